/**
 * The ONNX graph floor: bytes in, graph plans out. ONNX decoding and building,
 * attribute and tensor readers, the passes (QOperator -> QDQ, post-training
 * quantization, the WebGPU dequantize rewrite, the partition at our kernels), the
 * explorer's layer table, and `prepare(bytes, target)`, the one call a backend makes
 * before it creates sessions. A leaf: nothing here imports the rest of `src/`.
 *
 * @example
 * ```ts
 * import { prepare } from "./mod.ts";
 *
 * const plan = await prepare(await Deno.readFile("model.onnx"), "wasm");
 * ```
 *
 * @module
 */
export {
  type AttrValue,
  decodeModel,
  encodeModel,
  floatTensor,
  floatValueInfo,
  int64Tensor,
  int8View,
  node,
  onnx,
  OPSET,
  type TensorArray,
  tensorFloats,
  tensorValues,
} from "./onnx.ts";
export { attribute, floatAttr, intAttr, intsAttr, stringAttr, toNumber } from "./attributes.ts";
export {
  type GraphPlan,
  type KernelSet,
  type NativePlan,
  type PartitionedPlan,
  prepare,
  type PrepareOptions,
  type Target,
} from "./prepare.ts";
export {
  type GraphPart,
  type KernelPart,
  type Part,
  type Partition,
  partitionModel,
  type PartitionOptions,
} from "./partition.ts";
export {
  forInt8Kernels,
  isQOperator,
  type QOperatorOptions,
  type QOperatorRewrite,
  rewriteQOperator,
  rewriteQOperatorAsync,
} from "./qoperator.ts";
export {
  type ActivationRange,
  biasCorrect,
  type CalibrationMethod,
  DEFAULT_QUANTIZE,
  type Evaluate,
  floatValues,
  quantizeModel,
  type QuantizeOptions,
  quantizePerChannel,
  type QuantizeResult,
  uint8Params,
  type WeightRounding,
} from "./quantize.ts";
export { dequantizeForGpu, type DequantizeResult, dequantizeValues } from "./webgpu_dequantize.ts";
export {
  type ConvWeights,
  type GraphLayer,
  type GraphSummary,
  type LayerKind,
  prefixModel,
  summarizeGraph,
} from "./summary.ts";
export { heUniform, mulberry32 } from "./weights.ts";
