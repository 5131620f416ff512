/**
 * ONNX LRN in plain TypeScript, written straight from the operator definition
 * with float64 arithmetic: the yardstick the WebAssembly kernel is tested against.
 *
 * @module
 */
import { checkLrnArgs, type LrnDims, type LrnParams } from "./_lrn_args.ts";

export type { LrnDims, LrnParams };

/**
 * y = x / (bias + alpha / size * sum of x^2 over the channel window)^beta for
 * x, y: [N, C, H, W], accumulating in float64. Slow on purpose: one plain loop per
 * output, no running sums, so it is easy to check against the ONNX text.
 *
 * `out` may be a Float64Array to keep the unrounded results, and may be `x`
 * itself (the input is copied first then).
 *
 * @example
 * ```ts
 * import { lrnReference } from "./mod.ts";
 *
 * // x: [1, 3, 1, 1]
 * const y = lrnReference(new Float32Array([1, 2, 3]), [1, 3, 1, 1], { size: 3 });
 * console.log(y.length); // 3
 * ```
 */
export function lrnReference<T extends Float32Array | Float64Array = Float32Array>(
  x: Float32Array,
  dims: LrnDims,
  params: LrnParams,
  out?: T,
): T {
  const { n, c, hw, size, alpha, beta, bias } = checkLrnArgs(
    "Cannot compute the LRN reference",
    x,
    dims,
    params,
    out,
  );
  const y = (out ?? new Float32Array(x.length)) as T;
  const src = out !== undefined && out.buffer === x.buffer ? x.slice() : x;
  const before = Math.floor((size - 1) / 2);
  const after = Math.ceil((size - 1) / 2);
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const first = Math.max(0, ch - before);
      const last = Math.min(c - 1, ch + after);
      for (let p = 0; p < hw; p++) {
        let sum = 0;
        for (let k = first; k <= last; k++) {
          const v = src[(i * c + k) * hw + p];
          sum += v * v;
        }
        const at = (i * c + ch) * hw + p;
        y[at] = src[at] / Math.pow(bias + (alpha / size) * sum, beta);
      }
    }
  }
  return y;
}
