/**
 * The server's side of the explorer Worker (src/classify/_explorer_worker.ts):
 * starts it for one model file, sends requests over src/host/messages.ts, and
 * ends it after a while without any, so an idle server holds no second runtime.
 *
 * @module
 */
import { startWorker, WorkerChannel } from "../host/messages.ts";
import type { ExplorerMethods, FeaturesResult, InitResult } from "./_explorer_worker.ts";

export type { FeaturesResult, InitResult };

const WORKER_URL = new URL("./_explorer_worker.ts", import.meta.url);

/** How long the worker stays up after its last request (default 5 minutes). */
export const EXPLORER_IDLE_MS = 5 * 60_000;

/** One worker reading one model. Calls are answered in order. */
export class ExplorerEngine {
  readonly #channel: WorkerChannel<ExplorerMethods>;
  readonly #idleMs: number;
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
  constructor(modelUrl: URL, inputShape: number[], options: { idleMs?: number } = {}) {
    this.#idleMs = options.idleMs ?? EXPLORER_IDLE_MS;
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

  /** Runs x: [1, C, H, W] and returns the tensor `tensor` without its batch dim. */
  features(input: Float32Array, tensor: string): Promise<FeaturesResult> {
    return this.#call(() =>
      this.#channel.call("features", { input, tensor }, [input.buffer as ArrayBuffer])
    );
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

  #armIdle() {
    if (this.#channel.pending > 0 || this.#closed) return;
    clearTimeout(this.#timer);
    const timer = setTimeout(() => this.close(), this.#idleMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }
}
