/**
 * Inference in Workers behind the one {@linkcode Backend} contract: N
 * single-threaded onnxruntime-web sessions (`--workers N`), or one session
 * with its intra-op threads in one dedicated Worker (the default on
 * self-hosted servers, {@linkcode createInferenceWorkerBackend}). Each run
 * goes to an idle worker; the rest wait in arrival order, at most `maxQueue`
 * waiting plus running. With `classifyImage` a worker also decodes and
 * preprocesses the request's image, so neither inference nor decoding runs
 * on the server's thread: the event loop only accepts, admits and refuses
 * requests while every worker is busy. Each worker holds its own copy of the
 * model (fp32 AlexNet: 244 MB of weights, plus onnxruntime's), which is what
 * a pool of several costs; the one inference Worker is given the caller's
 * copy (moved, not cloned) when `releaseModel` is set.
 *
 * @module
 */
import { ClassifierError } from "../errors.ts";
import type { Backend, BackendOutput } from "./backend.ts";
import { availableCores, type WasmBackendOptions } from "./wasm.ts";
import { QueueFullError } from "../host/bounded_queue.ts";
import type {
  PoolFailure,
  PoolImageTask,
  PoolInit,
  PoolTask,
  PoolTensorTask,
} from "./_pool_worker.ts";

const WORKER_URL = new URL("./_pool_worker.ts", import.meta.url);

/**
 * The web Worker, kept from before any onnxruntime session exists: when
 * onnxruntime-web's wasm glue first loads under Deno it sets
 * `globalThis.Worker` to `worker_threads.Worker` (see src/api/_explorer_engine.ts).
 */
const WebWorker: typeof Worker = globalThis.Worker;

/** Options of {@linkcode createWorkerPoolBackend}. */
export interface WorkerPoolOptions extends WasmBackendOptions {
  /** Workers, each with one session (default: the available cores). */
  workers?: number;
  /**
   * Intra-op threads of each worker's session (default 1; `threads` is not used, so that
   * `--workers N --threads M` keeps its meaning of N single-threaded sessions).
   */
  threadsPerWorker?: number;
}

interface Started {
  worker: Worker;
  inputShape: (number | null)[];
  kernels: Backend["kernels"];
  threads: number;
}

/** What a worker is sent, less the id the pool gives it. */
type Work = Omit<PoolTensorTask, "id"> | Omit<PoolImageTask, "id">;

interface Task {
  work: Work;
  resolve: (value: unknown) => void;
  reject: (reason: Error) => void;
}

interface Member {
  worker: Worker;
  task?: Task;
}

/** The model's buffer, when it may be moved to a worker or detached rather than cloned. */
function movableModel(model: Uint8Array): ArrayBuffer | undefined {
  const { buffer } = model;
  return buffer instanceof ArrayBuffer && !buffer.detached ? buffer : undefined;
}

/** Frees the caller's model now; a buffer that cannot be detached (a Node Buffer's pool) stays. */
function detachModel(model: Uint8Array): void {
  try {
    movableModel(model)?.transfer(0);
  } catch {
    // Not detachable: it goes when its last reference does.
  }
}

/**
 * Starts one worker and waits until its session is ready. With `move`, the
 * model's buffer is transferred (the caller's view is detached), else cloned.
 */
function startWorker(
  model: Uint8Array,
  options: WorkerPoolOptions,
  move: boolean,
): Promise<Started> {
  const worker = new WebWorker(WORKER_URL.href, { type: "module" });
  return new Promise((resolve, reject) => {
    worker.onmessage = (event: MessageEvent) => {
      const { type, inputShape, kernels, threads, message } = event.data;
      if (type === "ready") return resolve({ worker, inputShape, kernels, threads });
      worker.terminate();
      reject(new ClassifierError("model_invalid", message));
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      worker.terminate();
      reject(new TypeError(`Cannot start a pool worker: ${event.message}`));
    };
    // Only what a worker's session needs (functions such as a logger cannot be posted).
    const { inputName, outputName, lrn, int8, threadsPerWorker: threads = 1 } = options;
    const init: PoolInit = {
      type: "init",
      model,
      options: { inputName, outputName, lrn, int8, threads },
    };
    const buffer = move ? movableModel(model) : undefined;
    try {
      worker.postMessage(init, buffer ? [buffer] : []);
    } catch {
      worker.postMessage(init); // a buffer that cannot be detached is cloned
      detachModel(model);
    }
  });
}

/**
 * Starts `options.workers` workers (default: the available cores), each
 * with a wasm session of `threadsPerWorker` threads (default 1) on its own
 * copy of `model`, and checks that the graph has the named float input and
 * output. With `releaseModel` the caller's `model` is detached once started
 * (moved to the worker when there is one).
 *
 * @example
 * ```ts
 * const pool = await createWorkerPoolBackend(bytes, {
 *   inputName: "data_0",
 *   outputName: "softmaxout_1",
 *   workers: 2,
 * });
 * const { data } = await pool.run(new Float32Array(3 * 224 * 224), [1, 3, 224, 224]);
 * await pool.release();
 * ```
 */
export async function createWorkerPoolBackend(
  model: Uint8Array,
  options: WorkerPoolOptions,
): Promise<Backend & { readonly workers: number }> {
  const count = options.workers ?? availableCores();
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`Cannot start a pool of ${count} workers: expected 1 or more`);
  }
  if (typeof WebWorker !== "function") {
    throw new TypeError("Cannot start the worker pool: this runtime has no Worker API");
  }
  if (WebWorker.name === "NodeWorker") {
    throw new TypeError(
      "Cannot start the worker pool: import src/runtime/worker_pool.ts before onnxruntime-web " +
        "loads its WebAssembly (it replaces globalThis.Worker)",
    );
  }
  // One worker takes the caller's copy; several each get a clone, and the caller's goes after.
  const move = count === 1 && options.releaseModel === true;
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => startWorker(model, options, move)),
  );
  const failed = started.find((s) => s.status === "rejected");
  if (failed) {
    for (const s of started) if (s.status === "fulfilled") s.value.worker.terminate();
    throw (failed as PromiseRejectedResult).reason;
  }
  const ready = started.map((s) => (s as PromiseFulfilledResult<Started>).value);
  if (options.releaseModel && !move) detachModel(model);
  const { inputShape, kernels, threads } = ready[0];
  const capacity = options.maxQueue ?? Infinity;
  const members: Member[] = ready.map(({ worker }) => ({ worker }));
  const waiting: Task[] = [];
  let nextId = 0;
  let closed = false;

  let failure: string | undefined;
  const busy = () => members.filter((m) => m.task).length;
  // 503 not_ready: the process is up but this backend cannot serve until it is restarted.
  const fail = (task: Task, message: string) =>
    task.reject(new ClassifierError("not_ready", message));

  const pump = () => {
    for (const member of members) {
      if (member.task) continue;
      const task = waiting.shift();
      if (!task) return;
      member.task = task;
      const message: PoolTask = { ...task.work, id: nextId++ };
      member.worker.postMessage(message);
    }
  };

  for (const member of members) {
    member.worker.onmessage = (event: MessageEvent) => {
      const { ok, result, message, code } = event.data as PoolFailure & { result: unknown };
      const task = member.task;
      member.task = undefined;
      if (ok) task?.resolve(result);
      else task?.reject(code ? new ClassifierError(code, message) : new Error(message));
      pump();
    };
    member.worker.onerror = (event: ErrorEvent) => {
      // A worker that crashed leaves the pool; its task fails, the others go on.
      event.preventDefault();
      member.worker.terminate();
      members.splice(members.indexOf(member), 1);
      if (member.task) {
        fail(member.task, `Cannot run the model: a pool worker failed: ${event.message}`);
      }
      if (members.length === 0) {
        // The model went to the workers, so there is nothing to restart them from here.
        failure = `Cannot classify: the inference worker stopped (${event.message}); ` +
          "restart the server";
        for (const task of waiting.splice(0)) fail(task, failure);
      }
      pump();
    };
  }

  const submit = <T>(work: Work, signal?: AbortSignal) => {
    if (failure) return Promise.reject(new ClassifierError("not_ready", failure));
    if (closed) {
      return Promise.reject(new TypeError("Cannot run the model: the worker pool is closed"));
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (waiting.length + busy() >= capacity) return Promise.reject(new QueueFullError(capacity));
    return new Promise<T>((resolve, reject) => {
      const task: Task = { work, resolve: resolve as (v: unknown) => void, reject };
      if (signal) {
        // A request that timed out (or whose client left) while waiting frees its place
        // instead of spending a worker on an answer nobody reads.
        const drop = () => {
          const i = waiting.indexOf(task);
          if (i >= 0) {
            waiting.splice(i, 1);
            reject(signal.reason);
          }
        };
        signal.addEventListener("abort", drop, { once: true });
        const settled = () => signal.removeEventListener("abort", drop);
        task.resolve = (value) => (settled(), resolve(value as T));
        task.reject = (reason) => (settled(), reject(reason));
      }
      waiting.push(task);
      pump();
    });
  };

  return {
    name: "wasm",
    threads,
    workers: count,
    inputShape,
    kernels,
    get queueDepth() {
      return waiting.length + busy();
    },
    get failure() {
      return failure;
    },
    run: (data, dims) => submit<BackendOutput>({ type: "run", data, dims: [...dims] }),
    capture: (data, dims) =>
      submit<Record<string, BackendOutput>>({ type: "capture", data, dims: [...dims] }),
    // The bytes are copied to the worker (the caller keeps its buffer).
    classifyImage: (bytes, { maxPixels, spec, signal }) =>
      submit({ type: "image", bytes, maxPixels, spec }, signal),
    release() {
      closed = true;
      for (const task of waiting.splice(0)) {
        fail(task, "Cannot run the model: the pool was released");
      }
      for (const member of members) {
        if (member.task) fail(member.task, "Cannot run the model: the pool was released");
        member.worker.terminate();
      }
      members.length = 0;
      return Promise.resolve();
    },
  };
}

/**
 * One wasm session with `options.threads` intra-op threads (default: the
 * available cores) in one dedicated Worker, which also decodes and
 * preprocesses: the single session of the default configuration, off the
 * server's thread, so that a full queue is refused while inference runs.
 * One model copy, as `createWasmBackend` on the caller's thread
 * (moved to the Worker with `releaseModel`), plus the Worker's own isolate.
 *
 * @example
 * ```ts
 * const backend = await createInferenceWorkerBackend(bytes, {
 *   inputName: "data_0",
 *   outputName: "softmaxout_1",
 *   threads: 2,
 *   releaseModel: true,
 * });
 * const { data } = await backend.run(new Float32Array(3 * 224 * 224), [1, 3, 224, 224]);
 * await backend.release();
 * ```
 */
export function createInferenceWorkerBackend(
  model: Uint8Array,
  options: WasmBackendOptions,
): Promise<Backend & { readonly workers: number }> {
  const threads = options.threads ?? availableCores();
  return createWorkerPoolBackend(model, { ...options, workers: 1, threadsPerWorker: threads });
}
