/**
 * Classifying images end to end.
 *
 * @module
 */
export {
  type Classification,
  Classifier,
  type ModelInfo,
  type WeightsInfo,
  weightsInfo,
} from "./classifier.ts";
export { type Prediction, softmax, topK } from "./top_k.ts";
export {
  CALLS_PER_WORKER,
  createWorkerBackend,
  isWorkerBackend,
  type WorkerBackend,
  type WorkerBackendOptions,
} from "./worker_backend.ts";
export { EXPLORER_IDLE_MS, ExplorerEngine } from "./explorer_engine.ts";
