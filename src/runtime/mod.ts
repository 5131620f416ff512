/**
 * Inference backends behind one contract.
 *
 * @module
 */
export type { Backend, BackendOutput, GraphIo } from "./backend.ts";
export { availableCores, createWasmBackend, type WasmBackendOptions } from "./wasm.ts";
export {
  BACKEND_REQUESTS,
  type BackendFactory,
  type BackendKind,
  type BackendOptions,
  backendOrder,
  type BackendRequest,
  createBackend,
} from "./select.ts";
