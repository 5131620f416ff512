/**
 * Hand-written kernels: each fast WebAssembly kernel beside its plain TypeScript
 * reference.
 *
 * - {@linkcode createLrnKernel}: ONNX LRN (NCHW float32) on SIMD128, from `wasm/`.
 * - {@linkcode lrnReference}: the same operator in float64, straight from the spec.
 * - {@linkcode createQLinearKernel} / {@linkcode qlinearReference}: the quantized Gemm
 *   (uint8 activations, int8 weights per output row, float epilogue) on the int8 GEMM.
 * - {@linkcode createQConvKernel} / {@linkcode qconvReference}: the quantized Conv
 *   (im2col + the same GEMM), NCHW with groups, strides, pads and dilations.
 * - {@linkcode quantizeLinearReference}: ONNX QuantizeLinear to uint8 (ties to even).
 * - {@linkcode createMaxPoolKernel} / {@linkcode maxPoolReference}: ONNX MaxPool (2-D, NCHW).
 * - {@linkcode softmaxLastAxis}: Softmax over the last axis (plain TypeScript).
 * - {@linkcode createSplitConvKernel} / {@linkcode createSplitLinearKernel}: the quantized
 *   layers split by output channels across helper Workers ({@linkcode KernelHelpers}).
 *
 * @example
 * ```ts
 * import { createLrnKernel, lrnReference } from "./mod.ts";
 *
 * // x: [1, 8, 2, 2]
 * const x = Float32Array.from({ length: 32 }, (_, i) => i / 32);
 * const params = { size: 5, alpha: 1e-4, beta: 0.75, bias: 1 };
 * const fast = (await createLrnKernel()).run(x, [1, 8, 2, 2], params);
 * const slow = lrnReference(x, [1, 8, 2, 2], params);
 * console.log(Math.abs(fast[5] - slow[5]) < 1e-6); // true
 * ```
 *
 * @module
 */
export { createLrnKernel, type LrnKernel, type LrnKernelOptions } from "./lrn_wasm.ts";
export { type LrnDims, type LrnParams, lrnReference } from "./lrn_reference.ts";
export {
  createQLinearKernel,
  type QLinearKernel,
  type QLinearKernelOptions,
} from "./qlinear_wasm.ts";
export {
  qlinearAccumulateReference,
  qlinearOutputReference,
  qlinearReference,
  type QLinearWeights,
  quantizeLinearReference,
  roundHalfEven,
} from "./qlinear_reference.ts";
export { createQConvKernel, type QConvKernel, type QConvKernelOptions } from "./qconv_wasm.ts";
export {
  type ConvDims,
  type ConvGeometry,
  convGeometry,
  qconvAccumulateReference,
  qconvOutputReference,
  qconvReference,
  type QConvWeights,
} from "./qconv_reference.ts";
export { createMaxPoolKernel, type MaxPoolKernel } from "./maxpool_wasm.ts";
export { type MaxPoolParams, maxPoolReference, poolGeometry } from "./maxpool_reference.ts";
export { softmaxLastAxis } from "./softmax.ts";
export {
  createSplitConvKernel,
  createSplitLinearKernel,
  KernelHelpers,
  type SplitConvKernel,
  type SplitLinearKernel,
} from "./split.ts";
