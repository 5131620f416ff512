/**
 * The server's side of the explorer worker (src/api/_explorer_worker.ts):
 * starts it for one model file, sends requests, and ends it after a while
 * without any, so an idle server holds no second runtime.
 *
 * @module
 */
import type { FeaturesResult, InitResult } from "./_explorer_worker.ts";

const WORKER_URL = new URL("./_explorer_worker.ts", import.meta.url);

/**
 * The web Worker, kept from before any onnxruntime session exists: when
 * onnxruntime-web's wasm glue first loads under Deno it takes itself for
 * Node.js and sets `globalThis.Worker` to `worker_threads.Worker`.
 */
const WebWorker: typeof Worker = globalThis.Worker;

/** How long the worker stays up after its last request (default 5 minutes). */
export const EXPLORER_IDLE_MS = 5 * 60_000;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (reason: Error) => void;
}

/** One worker reading one model. Calls are answered in order. */
export class ExplorerEngine {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  readonly #idleMs: number;
  #next = 0;
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
    if (WebWorker.name === "NodeWorker") {
      throw new TypeError(
        "Cannot start the explorer worker: import src/api/explorer.ts before onnxruntime-web " +
          "loads its WebAssembly (it replaces globalThis.Worker)",
      );
    }
    this.#worker = new WebWorker(WORKER_URL.href, { type: "module" });
    this.#worker.onmessage = (event: MessageEvent) => {
      const { id, ok, result, message } = event.data;
      const pending = this.#pending.get(id);
      this.#pending.delete(id);
      if (ok) pending?.resolve(result);
      else pending?.reject(new Error(message));
      this.#armIdle();
    };
    this.#worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.close(new Error(`The explorer worker failed: ${event.message}`));
    };
    this.summary = this.#call("init", { modelUrl: modelUrl.href, inputShape }) as Promise<
      InitResult
    >;
    // Callers that never ask must not see an unhandled rejection.
    this.summary.catch(() => {});
  }

  /** Whether the worker has ended (idle, failed or closed); a new engine is then needed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Runs x: [1, C, H, W] and returns the tensor `tensor` without its batch dim. */
  features(input: Float32Array, tensor: string): Promise<FeaturesResult> {
    return this.#call("features", { input, tensor }, [input.buffer as ArrayBuffer]) as Promise<
      FeaturesResult
    >;
  }

  /** Ends the worker; pending calls fail with `reason`. */
  close(reason = new Error("The explorer worker was closed")): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#worker.terminate();
    for (const p of this.#pending.values()) p.reject(reason);
    this.#pending.clear();
  }

  #call(type: string, body: Record<string, unknown>, transfer: Transferable[] = []) {
    if (this.#closed) return Promise.reject(new Error("The explorer worker was closed"));
    clearTimeout(this.#timer);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, type, ...body }, transfer);
    });
  }

  #armIdle() {
    if (this.#pending.size > 0 || this.#closed) return;
    clearTimeout(this.#timer);
    const timer = setTimeout(() => this.close(), this.#idleMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }
}
