/**
 * Softmax over the last axis of a float32 tensor, in plain TypeScript (float64 inside,
 * one rounding to float32 at the end). At a classifier's head (x: [N, 1000]) it costs
 * microseconds, so it has no WebAssembly twin; tests/runtime/kernels/softmax_test.ts
 * checks it against onnxruntime-web's Softmax.
 *
 * ```text
 * y[n, i] = exp(x[n, i] - max_j x[n, j]) / sum_j exp(x[n, j] - max_j x[n, j])
 * ```
 *
 * @module
 */

/**
 * y = softmax(x) along the last axis of rows of `size` values. A row holding +Infinity
 * or NaN gives NaN (as exp(inf - inf) does).
 *
 * @example
 * ```ts
 * import { softmaxLastAxis } from "./softmax.ts";
 *
 * const y = softmaxLastAxis(new Float32Array([0, Math.log(3)]), 2);
 * console.log(Array.from(y, (v) => v.toFixed(2))); // ["0.25", "0.75"]
 * ```
 */
export function softmaxLastAxis(x: Float32Array, size: number, out?: Float32Array): Float32Array {
  const action = "Cannot compute Softmax";
  if (!Number.isInteger(size) || size < 1 || x.length % size !== 0) {
    throw new RangeError(`${action}: ${x.length} values are not rows of ${size}`);
  }
  if (out !== undefined && out.length !== x.length) {
    throw new RangeError(`${action}: out must hold ${x.length} values, it has ${out.length}`);
  }
  const y = out ?? new Float32Array(x.length);
  for (let r = 0; r < x.length; r += size) {
    let max = -Infinity;
    for (let i = r; i < r + size; i++) if (!(x[i] <= max)) max = x[i];
    let sum = 0;
    for (let i = r; i < r + size; i++) sum += Math.exp(x[i] - max);
    for (let i = r; i < r + size; i++) y[i] = Math.exp(x[i] - max) / sum;
  }
  return y;
}
