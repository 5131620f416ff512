/**
 * The quantized Gemm in plain TypeScript, written from the QDQ scheme of
 * src/model/quantize.ts: the yardstick the WebAssembly kernel is tested against.
 *
 * ```text
 * x_q[n, k] = clamp(roundHalfEven(x[n, k] / s_x) + z_x, 0, 255)      (ONNX QuantizeLinear)
 * acc[n, m] = sum over k of (x_q[n, k] - z_x) * w[m, k]               (exact integers)
 * y[n, m]   = f32(acc) * f32(s_x * s_w[m]) + bias[m], then max(y, 0) with ReLU
 * ```
 *
 * Every float step is one float32 operation (Math.fround), in the kernel's order, so
 * the kernel must match this reference bit for bit.
 *
 * Layers with `activations: "int16"` (weight-only int8 layers: float input) round each
 * sample n of x on its own symmetric int16 grid instead:
 *
 * ```text
 * s_n       = f32(max |x[n, :]| / 32767) over the finite values (1 when that is 0)
 * xq[n, k]  = clamp(roundHalfEven(f32(x[n, k] / s_n)), -32767, 32767)   (NaN -> 0)
 * acc[n, m] = sum over k of xq[n, k] * w[m, k]                          (exact integers)
 * y[n, m]   = f32(acc) * f32(s_n * s_w[m]) + bias[m], then max(y, 0) with ReLU
 * ```
 *
 * @module
 */
import {
  checkLinearArgs,
  checkQLinearWeights,
  checkQuantizeArgs,
  type QLinearWeights,
} from "./_q_args.ts";

export type { QLinearWeights };

/** Largest |x_q| of the int16 grid (symmetric: -32768 is not used). */
export const Q16_MAX = 32767;

/**
 * Rounds to the nearest integer, ties to even (C's nearbyint in the default mode, as
 * onnxruntime's QuantizeLinear rounds); NaN and infinities pass through.
 *
 * @example
 * ```ts
 * import { roundHalfEven } from "./qlinear_reference.ts";
 *
 * console.log([0.5, 1.5, 2.5, -2.5].map(roundHalfEven)); // [0, 2, 2, -2]
 * ```
 */
export function roundHalfEven(v: number): number {
  const r = Math.round(v); // ties toward +infinity
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * ONNX QuantizeLinear to uint8 with one scale and zero point:
 * q = clamp(roundHalfEven(f32(x / scale)) + zeroPoint, 0, 255); NaN gives 0, as in
 * onnxruntime-web. The scale is rounded to float32 first, as the model stores it.
 *
 * @example
 * ```ts
 * import { quantizeLinearReference } from "./qlinear_reference.ts";
 *
 * const q = quantizeLinearReference(new Float32Array([0, 0.25, 0.75, 100, -1]), 0.5, 10);
 * console.log(Array.from(q)); // [10, 10, 12, 210, 8]
 * ```
 */
export function quantizeLinearReference(
  x: Float32Array,
  scale: number,
  zeroPoint: number,
  out?: Uint8Array,
): Uint8Array {
  const s = checkQuantizeArgs("Cannot compute the QuantizeLinear reference", scale, zeroPoint);
  if (out !== undefined && out.length !== x.length) {
    throw new RangeError(
      `Cannot compute the QuantizeLinear reference: out has ${out.length} values, x has ${x.length}`,
    );
  }
  const q = out ?? new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    // f32 / f32 in float64, rounded once to float32, is the correctly rounded f32 division.
    const v = roundHalfEven(Math.fround(x[i] / s)) + zeroPoint;
    q[i] = Number.isNaN(v) ? 0 : Math.min(255, Math.max(0, v));
  }
  return q;
}

/**
 * The exact int32 accumulators: acc[n, m] = sum over k of (xq[n, k] - z_x) * w[m, k].
 * xq: [N, K] uint8, acc: [N, M].
 *
 * @example
 * ```ts
 * import { qlinearAccumulateReference } from "./qlinear_reference.ts";
 *
 * // W: [2, 3], xq: [1, 3]
 * const layer = { weights: new Int8Array([1, 2, 3, -1, 0, 127]), m: 2, k: 3 };
 * const acc = qlinearAccumulateReference(layer, new Uint8Array([129, 128, 255]), 1, 128);
 * console.log(Array.from(acc)); // [382, 16128]
 * ```
 */
export function qlinearAccumulateReference(
  layer: Pick<QLinearWeights, "weights" | "m" | "k">,
  xq: Uint8Array,
  n: number,
  xZeroPoint: number,
): Int32Array {
  const { weights, m, k } = layer;
  checkLinearArgs("Cannot compute the quantized Gemm reference", xq, n, k);
  checkQuantizeArgs("Cannot compute the quantized Gemm reference", 1, xZeroPoint);
  const acc = new Int32Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < m; r++) {
      let sum = 0; // |sum| <= 65536 * 255 * 128 < 2^31: exact in a double
      for (let j = 0; j < k; j++) sum += (xq[i * k + j] - xZeroPoint) * weights[r * k + j];
      acc[i * m + r] = sum;
    }
  }
  return acc;
}

/**
 * The float epilogue on exact sums: y[n, m] = f32(acc) * f32(s_x * s_w[m]) + bias[m],
 * then max(y, 0) when `relu`. acc, y: [N, M].
 *
 * @example
 * ```ts
 * import { qlinearOutputReference } from "./qlinear_reference.ts";
 *
 * const layer = { m: 2, weightScales: new Float32Array([0.5, 0.25]), bias: new Float32Array([1, -10]) };
 * const y = qlinearOutputReference(layer, new Int32Array([4, 8]), 1, true);
 * console.log(Array.from(y)); // [3, 0]
 * ```
 */
export function qlinearOutputReference(
  layer: Pick<QLinearWeights, "m" | "weightScales" | "bias">,
  acc: Int32Array,
  xScale: number,
  relu: boolean,
): Float32Array {
  const { m, weightScales, bias } = layer;
  const sx = Math.fround(xScale);
  const y = new Float32Array(acc.length);
  for (let i = 0; i < acc.length; i++) {
    const r = i % m;
    let v = Math.fround(Math.fround(acc[i]) * Math.fround(sx * weightScales[r]));
    if (bias !== undefined) v = Math.fround(v + bias[r]);
    y[i] = relu ? Math.max(v, 0) : v;
  }
  return y;
}

/**
 * The whole quantized Gemm: quantize x, accumulate, scale to float. x: [N, K] float32,
 * y: [N, M] float32.
 *
 * @example
 * ```ts
 * import { qlinearReference } from "./qlinear_reference.ts";
 *
 * // W: [1, 2], x: [1, 2] -> x_q = [255, 128]
 * const layer = { weights: new Int8Array([127, -127]), m: 1, k: 2, weightScales: new Float32Array([1 / 127]) };
 * const y = qlinearReference(layer, new Float32Array([127.5, 64]), 1, 0.5, 0, false);
 * console.log(y[0]); // 63.5
 * ```
 */
export function qlinearReference(
  layer: QLinearWeights,
  x: Float32Array,
  n: number,
  xScale: number,
  xZeroPoint: number,
  relu: boolean,
): Float32Array {
  checkQLinearWeights("Cannot compute the quantized Gemm reference", layer);
  checkLinearArgs("Cannot compute the quantized Gemm reference", x, n, layer.k);
  const xq = quantizeLinearReference(x, xScale, xZeroPoint);
  return qlinearOutputReference(
    layer,
    qlinearAccumulateReference(layer, xq, n, xZeroPoint),
    xScale,
    relu,
  );
}

/**
 * The int16 scale of one sample: f32(max |x| / 32767) over its finite values, or 1
 * when that is 0.
 *
 * @example
 * ```ts
 * import { scale16Reference } from "./qlinear_reference.ts";
 *
 * console.log(scale16Reference(new Float32Array([0.5, -32767, NaN, Infinity]))); // 1
 * ```
 */
export function scale16Reference(x: Float32Array): number {
  let max = 0;
  for (const v of x) {
    const a = Math.abs(v);
    if (a < Infinity && a > max) max = a;
  }
  const s = Math.fround(max / Q16_MAX);
  return s > 0 ? s : 1;
}

/**
 * Rounds x: [N, K] to int16 per sample: xq: [N, K] and the N scales.
 *
 * @example
 * ```ts
 * import { quantize16Reference } from "./qlinear_reference.ts";
 *
 * const { xq, scales } = quantize16Reference(new Float32Array([32767, -1.5, 2.5, NaN]), 1);
 * console.log(Array.from(xq), scales[0]); // [32767, -2, 2, 0] 1
 * ```
 */
export function quantize16Reference(
  x: Float32Array,
  n: number,
): { xq: Int16Array; scales: Float32Array } {
  const k = n === 0 ? 0 : x.length / n;
  const xq = new Int16Array(x.length);
  const scales = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const row = x.subarray(i * k, (i + 1) * k);
    const s = scales[i] = scale16Reference(row);
    for (let j = 0; j < k; j++) {
      const v = roundHalfEven(Math.fround(row[j] / s));
      xq[i * k + j] = Number.isNaN(v) ? 0 : Math.min(Q16_MAX, Math.max(-Q16_MAX, v));
    }
  }
  return { xq, scales };
}

/**
 * The exact sums for any int16 input: acc[n, m] = sum over k of xq[n, k] * w[m, k]
 * (exact in a double: |acc| <= 65536 * 32768 * 128 = 2^38). xq: [N, K], acc: [N, M].
 *
 * @example
 * ```ts
 * import { qlinear16AccumulateReference } from "./qlinear_reference.ts";
 *
 * const layer = { weights: new Int8Array([-128, 127]), m: 1, k: 2 };
 * console.log(qlinear16AccumulateReference(layer, new Int16Array([-32768, 2]), 1)[0]); // 4194558
 * ```
 */
export function qlinear16AccumulateReference(
  layer: Pick<QLinearWeights, "weights" | "m" | "k">,
  xq: Int16Array,
  n: number,
): Float64Array {
  const { weights, m, k } = layer;
  if (xq.length !== n * k) {
    throw new RangeError(
      `Cannot compute the int16 Gemm reference: xq has ${xq.length} values but [${n}, ${k}] needs ${
        n * k
      }`,
    );
  }
  const acc = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < m; r++) {
      let sum = 0;
      for (let j = 0; j < k; j++) sum += xq[i * k + j] * weights[r * k + j];
      acc[i * m + r] = sum;
    }
  }
  return acc;
}

/**
 * The whole int16 layer: round each sample, exact sums, the float epilogue with each
 * sample's scale. x: [N, K] float32, y: [N, M] float32.
 *
 * @example
 * ```ts
 * import { qlinear16Reference } from "./qlinear_reference.ts";
 *
 * const layer = { weights: new Int8Array([127, -127]), m: 1, k: 2, weightScales: new Float32Array([1 / 127]) };
 * console.log(qlinear16Reference(layer, new Float32Array([3, 1]), 1, false)[0]); // 2.0000305
 * ```
 */
export function qlinear16Reference(
  layer: QLinearWeights,
  x: Float32Array,
  n: number,
  relu: boolean,
): Float32Array {
  checkQLinearWeights("Cannot compute the int16 Gemm reference", layer);
  checkLinearArgs("Cannot compute the int16 Gemm reference", x, n, layer.k);
  const { m, weightScales, bias } = layer;
  const { xq, scales } = quantize16Reference(x, n);
  const acc = qlinear16AccumulateReference(layer, xq, n);
  const y = new Float32Array(n * m);
  for (let i = 0; i < y.length; i++) {
    const r = i % m, sx = scales[Math.floor(i / m)];
    let v = Math.fround(Math.fround(acc[i]) * Math.fround(sx * weightScales[r]));
    if (bias !== undefined) v = Math.fround(v + bias[r]);
    y[i] = relu ? Math.max(v, 0) : v;
  }
  return y;
}
