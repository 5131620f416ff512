/**
 * Chooses the inference backend. Backends are tried in priority order; one
 * that cannot start is skipped with a logged reason, and wasm (which runs
 * everywhere onnxruntime-web does) is always last. Each backend's module is
 * imported when it is tried: a server whose model runs in a Worker loads none
 * of them on its own thread.
 *
 * @module
 */
import type { Backend } from "./backend.ts";
import type { WasmBackendOptions } from "./wasm.ts";
import type { WebGpuBackendOptions } from "./webgpu.ts";
import { deviceNodeRefusal } from "./_gpu_nodes.ts";

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
}

/** Creates one kind of backend, or throws why it cannot. */
export type BackendFactory = (model: Uint8Array, options: BackendOptions) => Promise<Backend>;

/** The wasm backend on this thread (its module imported on first use). */
const createWasmBackend: BackendFactory = async (model, options) =>
  await (await import("./wasm.ts")).createWasmBackend(model, options);

/**
 * The factories of every backend kind; `wasm` replaces the wasm one (src/classify
 * passes one that runs the session in Workers), which WebGPU also falls back to
 * after a lost device.
 */
export function backendFactories(
  wasm: BackendFactory = createWasmBackend,
): Record<BackendKind, BackendFactory> {
  const factories: Record<BackendKind, BackendFactory> = {
    wasm,
    // A fallback (software) adapter only when webgpu was asked for by name; after a lost
    // device the wasm backend these options make takes over.
    webgpu: async (model, options) => {
      const allowFallbackAdapter = options.backend === "webgpu";
      // Refused before the WebGPU backend's module (onnxruntime-web, the graph code) loads.
      const refusal = deviceNodeRefusal({ ...options, allowFallbackAdapter });
      if (refusal) throw refusal;
      return await (await import("./webgpu.ts")).createWebGpuBackend(model, {
        ...options,
        allowFallbackAdapter,
        fallback: (bytes) => factories.wasm(bytes, options),
      });
    },
    native: async (model, options) =>
      await (await import("./native.ts")).createNativeBackend(model, options),
  };
  return factories;
}

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
  factories: Record<BackendKind, BackendFactory> = backendFactories(),
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
