/**
 * The server's side of the explorer Worker (src/classify/_explorer_worker.ts):
 * starts it for one model file, sends requests over src/host/messages.ts, and
 * ends it after a while without any, so an idle server holds no second runtime.
 *
 * @module
 */
import { startWorker, WorkerChannel } from "../host/mod.ts";
import type { ExplorerMethods, FeaturesResult, InitResult } from "./_explorer_worker.ts";

export type { FeaturesResult, InitResult };

const WORKER_URL = new URL("./_explorer_worker.ts", import.meta.url);

/** How long the worker stays up after its last request (default 5 minutes). */
export const EXPLORER_IDLE_MS = 5 * 60_000;

/** How long a call abandoned at its deadline may still run before the Worker is ended (ms). */
export const EXPLORER_GRACE_MS = 1000;

/** One worker reading one model. Calls are answered in order. */
export class ExplorerEngine {
  readonly #channel: WorkerChannel<ExplorerMethods>;
  readonly #idleMs: number;
  readonly #graceMs: number;
  #timer?: ReturnType<typeof setTimeout>;
  #closed = false;
  /** The layer table and first-layer filters, once the graph is read. */
  readonly summary: Promise<InitResult>;

  /**
   * Starts the worker on `modelUrl`; `inputShape` ([C, H, W]) stands in for
   * symbolic input dims.
   *
   * @example
   * ```ts
   * const engine = new ExplorerEngine(files.model, [3, 224, 224]);
   * (await engine.summary).layers.length; // 14 for AlexNet
   * ```
   */
  constructor(
    modelUrl: URL,
    inputShape: number[],
    options: { idleMs?: number; graceMs?: number } = {},
  ) {
    this.#idleMs = options.idleMs ?? EXPLORER_IDLE_MS;
    this.#graceMs = options.graceMs ?? EXPLORER_GRACE_MS;
    this.#channel = new WorkerChannel(startWorker(WORKER_URL, "the explorer Worker"), {
      onExit: (why) => this.close(new Error(`The explorer Worker stopped: ${why}`)),
    });
    this.summary = this.#call(() =>
      this.#channel.call("init", { modelUrl: modelUrl.href, inputShape })
    );
    // Callers that never ask must not see an unhandled rejection.
    this.summary.catch(() => {});
  }

  /** Whether the worker has ended (idle, failed or closed); a new engine is then needed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Runs x: [1, C, H, W] and returns the tensor `tensor` without its batch dim.
   * When `signal` aborts (the request's deadline) the call rejects at once with
   * its reason; a Worker still busy with it `graceMs` later (default
   * {@linkcode EXPLORER_GRACE_MS})
   * is ended (the next request starts a fresh engine).
   */
  features(
    input: Float32Array,
    tensor: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<FeaturesResult> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const call = this.#call(() =>
      this.#channel.call("features", { input, tensor }, [input.buffer as ArrayBuffer])
    );
    return signal ? this.#abandonable(call, signal) : call;
  }

  /** Ends the worker; pending calls fail with `reason`. */
  close(reason = new Error("The explorer worker was closed")): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#channel.close(reason);
  }

  /** One call; the idle timer restarts once no call is in flight. */
  async #call<T>(call: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error("The explorer worker was closed");
    clearTimeout(this.#timer);
    try {
      return await call();
    } finally {
      this.#armIdle();
    }
  }

  #abandonable<T>(call: Promise<T>, signal: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const onAbort = () => {
        reject(signal.reason);
        const timer = setTimeout(() => {
          if (!done) this.close(new Error("The explorer worker was stopped past a deadline"));
        }, this.#graceMs);
        Deno.unrefTimer(timer);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      call.then(resolve, reject).finally(() => {
        done = true;
        signal.removeEventListener("abort", onAbort);
      });
    });
  }

  #armIdle() {
    if (this.#channel.pending > 0 || this.#closed) return;
    clearTimeout(this.#timer);
    const timer = setTimeout(() => this.close(), this.#idleMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }
}
