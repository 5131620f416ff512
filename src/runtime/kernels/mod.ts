/**
 * Hand-written kernels: each fast WebAssembly kernel beside its plain TypeScript
 * reference.
 *
 * - {@linkcode createLrnKernel}: ONNX LRN (NCHW float32) on SIMD128, from `wasm/`.
 * - {@linkcode lrnReference}: the same operator in float64, straight from the spec.
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
