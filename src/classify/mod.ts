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
