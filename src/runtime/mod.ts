/**
 * Inference backends behind one contract.
 *
 * @module
 */
export type { Backend, BackendOutput, GraphIo, RunOptions } from "./backend.ts";
export { availableCores, createWasmBackend, type WasmBackendOptions } from "./wasm.ts";
export {
  createWebGpuBackend,
  DEFAULT_WEBGPU_LRN,
  type GpuEntry,
  type WebGpuBackendOptions,
} from "./webgpu.ts";
export {
  BACKEND_REQUESTS,
  backendFactories,
  type BackendFactory,
  type BackendKind,
  type BackendOptions,
  backendOrder,
  type BackendRequest,
  createBackend,
} from "./select.ts";
