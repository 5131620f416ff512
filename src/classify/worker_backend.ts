/**
 * Classifying in Workers: one session with its intra-op threads in one
 * dedicated inference Worker (the default on self-hosted servers), or N
 * single-threaded sessions (`--workers N`), each Worker also decoding and
 * preprocessing the images it runs (src/classify/_worker.ts). The server's
 * thread only accepts, admits and answers.
 *
 * The Workers run under a {@linkcode Supervisor} (src/host): a call whose
 * signal aborts while it waits never runs; one abandoned while it runs gets
 * its Worker replaced if it is still busy after a grace period; a Worker that
 * dies is replaced, logged with why, and {@linkcode WorkerBackend.state} says
 * `restarting` meanwhile. A replacement needs the model again: it is read
 * with `reload` (from disk) when given, else from a copy kept here.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import { type CallMessage, type ChannelOptions, startWorker, WorkerChannel } from "../host/mod.ts";
import { startHelperWorker } from "../runtime/kernels/helper_threads.ts";
import { type HostState, Supervisor } from "../host/mod.ts";
import type { PreprocessSpec } from "../image/mod.ts";
import type { Backend, RunOptions } from "../runtime/backend.ts";
import { availableCores } from "../runtime/backend.ts";
import type { WasmBackendOptions } from "../runtime/wasm.ts";
import type { ClassifierMethods, ImageRun, WorkerReady } from "./_worker.ts";

const WORKER_URL = new URL("./_worker.ts", import.meta.url);

/**
 * Calls each inference Worker takes at once. Two let a request whose decode yields (a large
 * PNG, decoded in slices) share the Worker with the next one, which then decodes and runs
 * between its slices instead of waiting for the whole decode; the session queues the runs.
 */
export const CALLS_PER_WORKER = 2;

/** Options of {@linkcode createWorkerBackend}. */
export interface WorkerBackendOptions extends WasmBackendOptions {
  /** Workers, each with one session (default 1). */
  workers?: number;
  /** Intra-op threads of each Worker's session (default: the available cores for one Worker, else 1). */
  threadsPerWorker?: number;
  /** Where the Workers' log lines, and why a Worker was replaced, are written. */
  logger?: Logger;
  /**
   * Reads the model again for a Worker that replaces one that died. Without it a copy
   * of the model stays in this thread's memory for that (the Workers get clones).
   */
  reload?: () => Promise<Uint8Array>;
  /** How long an abandoned call may still run before its Worker is replaced (ms, default 1000). */
  graceMs?: number;
  /** A Worker started ahead (see {@linkcode EarlyWorker}): the first Worker, once. */
  early?: EarlyWorker;
}

/**
 * An inference Worker started before its model is read: it loads its modules (about 100 ms)
 * on its own thread while the caller reads the file, instead of after. The first Worker
 * {@linkcode createWorkerBackend} starts is this one; `close` ends it when nothing took it.
 *
 * @example
 * ```ts
 * const early = new EarlyWorker();
 * try {
 *   const bytes = await Deno.readFile("models/alexnet-synthetic-int8.onnx");
 *   const backend = await createWorkerBackend(bytes, { ...io, early });
 * } finally {
 *   early.close();
 * }
 * ```
 */
export class EarlyWorker {
  #worker: Worker | undefined;
  #failure: string | undefined;
  #helpers: Worker[] = [];

  /**
   * `threads`: the session's; its helper Workers start here too (from this thread in ~50 ms,
   * from inside the inference Worker in 0.5-1 s) and are handed to it over ports.
   */
  constructor(threads = 1) {
    this.#worker = startWorker(WORKER_URL, "the inference Worker");
    if (threads > 1) {
      const started = Array.from({ length: threads - 1 }, () => startHelperWorker());
      this.#helpers = started.map((h) => h.worker);
      const ports = started.map((h) => h.port);
      // Answered to no one: the channel that takes the Worker up ignores a reply it did not ask.
      const call: CallMessage = { kind: "call", id: -1, method: "helpers", body: { ports } };
      this.#worker.postMessage(call, ports);
    }
    // Until a channel takes it over: a Worker that fails to load is not taken, and a fresh
    // one starts instead (whose failure the channel then reports).
    this.#worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#failure = event.message;
    };
  }

  /** The Worker, once; undefined once taken, or when it failed to load. */
  take(): Worker | undefined {
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker && this.#failure !== undefined) {
      worker.terminate();
      this.endHelpers();
      return undefined;
    }
    return worker;
  }

  /** Ends the Worker if nothing took it, and its helpers then. */
  close(): void {
    const worker = this.take();
    if (worker) {
      worker.terminate();
      this.endHelpers();
    }
  }

  /**
   * Ends the helper Workers: once the Worker that drove them is gone (released, or replaced by
   * the supervisor; a helper stopped by its pool has ended itself already).
   */
  endHelpers(): void {
    for (const helper of this.#helpers) helper.terminate();
    this.#helpers = [];
  }
}

/** Options of the image calls. */
export interface ImageCallOptions {
  maxPixels?: number;
  spec: PreprocessSpec;
  signal?: AbortSignal;
}

/** A backend in Workers that also decodes and preprocesses images there. */
export interface WorkerBackend extends Backend {
  /** Workers serving. */
  readonly workers: number;
  /** Ready, restarting (a Worker is being replaced and none serves yet) or failed. */
  readonly state: HostState;
  /** Decodes, preprocesses and runs one image as x: [1, 3, H, W] in a Worker; y: [1, K] and timings. */
  classifyImage(bytes: Uint8Array, options: ImageCallOptions): Promise<ImageRun>;
  /** Decodes and preprocesses one image in a Worker: x: [1, 3, H, W]. */
  prepareImage(bytes: Uint8Array, options: ImageCallOptions): Promise<Float32Array>;
  /** Terminates Worker `index` and starts a fresh one, as the supervisor does for a stuck one. */
  restartWorker(index: number, why: string): void;
}

/** Whether `backend` runs in Workers and decodes there. */
export function isWorkerBackend(backend: Backend): backend is WorkerBackend {
  return typeof (backend as Partial<WorkerBackend>).classifyImage === "function";
}

/** The model's buffer, when it may be moved to a Worker rather than cloned. */
function movableModel(model: Uint8Array): ArrayBuffer | undefined {
  const { buffer } = model;
  return buffer instanceof ArrayBuffer && !buffer.detached ? buffer : undefined;
}

/** Frees a model copy now; a buffer that cannot be detached (a Node Buffer's pool) stays. */
function detach(model: Uint8Array): void {
  try {
    movableModel(model)?.transfer(0);
  } catch {
    // Not detachable: it goes when its last reference does.
  }
}

/**
 * Starts one Worker and waits until its session is ready. With `move`, the
 * model's buffer is transferred (the caller's view is detached), else cloned.
 */
async function startOne(
  model: Uint8Array,
  options: WorkerBackendOptions,
  threads: number,
  move: boolean,
  channelOptions: ChannelOptions,
): Promise<{ channel: WorkerChannel<ClassifierMethods>; ready: WorkerReady }> {
  const channel = new WorkerChannel<ClassifierMethods>(
    options.early?.take() ?? startWorker(WORKER_URL, "the inference Worker"),
    channelOptions,
  );
  const { inputName, outputName, lrn, int8 } = options;
  const body = { model, options: { inputName, outputName, lrn, int8, threads } };
  const buffer = move ? movableModel(model) : undefined;
  try {
    let ready: Promise<WorkerReady>;
    try {
      ready = channel.call("init", body, buffer ? [buffer] : []);
    } catch {
      ready = channel.call("init", body); // a buffer that cannot be detached is cloned
      detach(model);
    }
    return { channel, ready: await ready };
  } catch (e) {
    channel.close();
    throw e;
  }
}

/**
 * Starts `options.workers` Workers (default 1), each with a wasm session of
 * `threadsPerWorker` threads on its own copy of `model`, under supervision.
 * With `releaseModel` and a `reload`, the caller's `model` is detached once
 * started (moved to the Worker when there is one).
 *
 * @example
 * ```ts
 * const backend = await createWorkerBackend(bytes, {
 *   inputName: "data_0",
 *   outputName: "softmaxout_1",
 *   threadsPerWorker: 2,
 * });
 * const { data } = await backend.run(new Float32Array(3 * 224 * 224), [1, 3, 224, 224]);
 * await backend.release();
 * ```
 */
export async function createWorkerBackend(
  model: Uint8Array,
  options: WorkerBackendOptions,
): Promise<WorkerBackend> {
  const count = options.workers ?? 1;
  const threads = options.threadsPerWorker ?? (count === 1 ? availableCores() : 1);
  // Without a way to read the model again, this thread keeps it to restart Workers from.
  const keep = options.reload ? undefined : model.slice();
  let first: WorkerReady | undefined;
  let firstStart = true;
  const move = count === 1 && options.releaseModel === true && !keep;
  const host = await Supervisor.start<ClassifierMethods>({
    what: count === 1 ? "inference Worker" : "pool Worker",
    workers: count,
    callsPerWorker: CALLS_PER_WORKER,
    capacity: options.maxQueue,
    logger: options.logger,
    graceMs: options.graceMs,
    async start(channelOptions) {
      // A replacement: the first Worker, which drove the early helpers, is gone.
      if (!firstStart) options.early?.endHelpers();
      const bytes = firstStart ? model : keep ?? await options.reload!();
      const started = await startOne(
        bytes,
        options,
        threads,
        firstStart ? move : true,
        channelOptions,
      );
      first ??= started.ready;
      return started.channel;
    },
  });
  firstStart = false;
  if (options.releaseModel && !move) detach(model);
  const { inputShape, kernels } = first!;
  const tensor = (data: Float32Array, dims: readonly number[]) => ({ data, dims: [...dims] });

  return {
    name: "wasm",
    threads: first!.threads,
    workers: count,
    inputShape,
    kernels,
    get queueDepth() {
      return host.queueDepth;
    },
    get state() {
      return host.state;
    },
    get failure() {
      const { status, reason } = host.state;
      return status === "ready" ? undefined : reason;
    },
    run: (data, dims, options?: RunOptions) =>
      host.call("run", tensor(data, dims), { signal: options?.signal }),
    capture: (data, dims) => host.call("capture", tensor(data, dims)),
    // The bytes are copied to the Worker (the caller keeps its buffer).
    classifyImage: (bytes, { maxPixels, spec, signal }) =>
      host.call("classify", { bytes, maxPixels, spec }, { signal }),
    prepareImage: (bytes, { maxPixels, spec, signal }) =>
      host.call("prepare", { bytes, maxPixels, spec }, { signal }),
    restartWorker: (index, why) => host.restart(index, why),
    release() {
      host.close();
      options.early?.endHelpers();
      return Promise.resolve();
    },
  };
}
