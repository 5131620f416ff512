/**
 * Chooses the inference backend. Backends are tried in priority order; one
 * that cannot start is skipped with a logged reason, and wasm (which runs
 * everywhere onnxruntime-web does) is always last.
 *
 * @module
 */
import { ClassifierError } from "../errors.ts";
import type { Backend } from "./backend.ts";
import { createNativeBackend } from "./native.ts";
import { createWasmBackend, type WasmBackendOptions } from "./wasm.ts";
import { createInferenceWorkerBackend, createWorkerPoolBackend } from "./worker_pool.ts";
import { createWebGpuBackend, type WebGpuBackendOptions } from "./webgpu.ts";

/** The backends there are. */
export type BackendKind = "wasm" | "webgpu" | "native";

/** What users may ask for with --backend / BACKEND. */
export const BACKEND_REQUESTS = ["auto", "wasm", "webgpu", "native"] as const;

/** One of {@linkcode BACKEND_REQUESTS}. */
export type BackendRequest = typeof BACKEND_REQUESTS[number];

/** Options every backend understands; each ignores what does not apply to it. */
export interface BackendOptions extends WasmBackendOptions, Pick<WebGpuBackendOptions, "gpu"> {
  /** Which backend to try first (default auto). */
  backend?: BackendRequest;
  /** Where fallbacks are reported. */
  log?: (line: string) => void;
  /**
   * wasm only: run that many single-threaded sessions in Workers
   * (`worker_pool.ts`) instead of one session with `threads` intra-op threads.
   * 0 or absent: one session.
   */
  workers?: number;
  /**
   * wasm only, with one session: run it (and the image decode) in one dedicated Worker
   * (`createInferenceWorkerBackend`), off the caller's thread. Default false: the caller's
   * thread, as on a platform without Workers. A Worker that cannot be created falls back to
   * the caller's thread, logged.
   */
  inferenceWorker?: boolean;
}

/** Creates one kind of backend, or throws why it cannot. */
export type BackendFactory = (model: Uint8Array, options: BackendOptions) => Promise<Backend>;

/** One session in a Worker; on the caller's thread when no Worker starts (the model is intact). */
async function inferenceWorker(model: Uint8Array, options: BackendOptions): Promise<Backend> {
  try {
    const backend = await createInferenceWorkerBackend(model, options);
    options.log?.(
      `Inference and image decoding run in one dedicated Worker (${backend.threads} threads)`,
    );
    return backend;
  } catch (e) {
    const buffer = model.buffer;
    if (e instanceof ClassifierError || (buffer instanceof ArrayBuffer && buffer.detached)) throw e;
    options.log?.(
      `Cannot start the inference Worker: ${(e as Error).message}; running on this thread`,
    );
    return await createWasmBackend(model, options);
  }
}

const FACTORIES: Record<BackendKind, BackendFactory> = {
  wasm: (model, options) =>
    options.workers
      ? createWorkerPoolBackend(model, options)
      : options.inferenceWorker
      ? inferenceWorker(model, options)
      : createWasmBackend(model, options),
  // A fallback (software) adapter only when webgpu was asked for by name; after a lost
  // device the wasm backend these options make takes over.
  webgpu: (model, options) =>
    createWebGpuBackend(model, {
      ...options,
      allowFallbackAdapter: options.backend === "webgpu",
      fallback: (bytes) => FACTORIES.wasm(bytes, options),
    }),
  native: createNativeBackend,
};

/**
 * The order in which backends are tried for a request: the asked-for one,
 * then wasm. `auto` tries webgpu first, which starts only on a hardware
 * (non-fallback) adapter.
 */
export function backendOrder(request: BackendRequest): BackendKind[] {
  if (request === "auto") return ["webgpu", "wasm"];
  if (request === "wasm") return ["wasm"];
  return [request, "wasm"];
}

/**
 * Creates the first backend of {@linkcode backendOrder} that starts; the
 * reasons the others could not are passed to `options.log`.
 *
 * @example
 * ```ts
 * const backend = await createBackend(bytes, {
 *   inputName: "data_0",
 *   outputName: "softmaxout_1",
 *   backend: "auto",
 * });
 * ```
 */
export async function createBackend(
  model: Uint8Array,
  options: BackendOptions,
  factories: Record<BackendKind, BackendFactory> = FACTORIES,
): Promise<Backend> {
  const order = backendOrder(options.backend ?? "auto");
  for (const [i, kind] of order.entries()) {
    if (i === order.length - 1) return await factories[kind](model, options);
    try {
      return await factories[kind](model, options);
    } catch (e) {
      options.log?.(
        `Cannot start the ${kind} backend: ${(e as Error).message}; using ${order[i + 1]}`,
      );
    }
  }
  throw new RangeError("Cannot choose a backend: none to try");
}
