/**
 * Argument checks shared by the int8 kernels and their references, so both reject
 * the same inputs with the same messages.
 *
 * The argument types live here too, so the reference imports this file and not
 * the other way round.
 *
 * @module
 */

/** A quantized Gemm layer with transB: y = x W^T, W: [M, K] int8 symmetric per output row. */
export interface QLinearWeights {
  /** W: [M, K] int8, row-major; the quantizer keeps it in [-127, 127]. */
  weights: Int8Array;
  /** Output features M (rows of W). */
  m: number;
  /** Input features K (columns of W), at most 65536. */
  k: number;
  /** s_w: [M] float32, one scale per output row. */
  weightScales: Float32Array;
  /** [M] float32, added after scaling (optional). */
  bias?: Float32Array;
  /**
   * How the input is rounded: `uint8` (default) with the layer's calibrated scale and
   * zero point (a QDQ layer), or `int16`, per sample on its own scale (a weight-only
   * layer, whose model input is float; see the module comment).
   */
  activations?: "uint8" | "int16";
}

/** Largest K (C/G * kH * kW for a conv) whose int32 sums are exact (wasm/src/qgemm.rs). */
export const MAX_K = 65536;

function positiveInteger(action: string, name: string, v: number, max = 0x7fffffff): void {
  if (!Number.isInteger(v) || v < 1 || v > max) {
    throw new RangeError(`${action}: ${name} must be an integer in [1, ${max}], got ${v}`);
  }
}

/** Checks s_x and z_x; returns the scale rounded to float32 (as the model stores it). */
export function checkQuantizeArgs(action: string, scale: number, zeroPoint: number): number {
  const s = Math.fround(scale);
  if (typeof scale !== "number" || !(s > 0) || !Number.isFinite(s)) {
    throw new RangeError(`${action}: the scale must be a positive finite float32, got ${scale}`);
  }
  if (!Number.isInteger(zeroPoint) || zeroPoint < 0 || zeroPoint > 255) {
    throw new RangeError(
      `${action}: the zero point must be an integer in [0, 255], got ${zeroPoint}`,
    );
  }
  return s;
}

/** Checks a [N, K] input of a quantized Gemm. */
export function checkLinearArgs(
  action: string,
  x: Float32Array | Uint8Array | Int16Array,
  n: number,
  k: number,
): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`${action}: n must be a non-negative integer, got ${n}`);
  }
  if (x.length !== n * k) {
    throw new RangeError(`${action}: x has ${x.length} values but [${n}, ${k}] needs ${n * k}`);
  }
}

/** Checks a Gemm layer's weights, scales and bias against its m and k. */
export function checkQLinearWeights(action: string, layer: QLinearWeights): void {
  const { weights, m, k, weightScales, bias } = layer;
  positiveInteger(action, "m", m);
  positiveInteger(action, "k", k, MAX_K);
  if (!(weights instanceof Int8Array) || weights.length !== m * k) {
    throw new TypeError(`${action}: weights must be an Int8Array of m * k = ${m * k} values`);
  }
  checkRowFloats(action, "weightScales", weightScales, m);
  if (bias !== undefined) checkRowFloats(action, "bias", bias, m);
  const { activations = "uint8" } = layer;
  if (activations !== "uint8" && activations !== "int16") {
    throw new TypeError(`${action}: activations must be "uint8" or "int16", got ${activations}`);
  }
}

/** Checks one float32 per output row. */
export function checkRowFloats(
  action: string,
  name: string,
  v: Float32Array | undefined,
  m: number,
): void {
  if (!(v instanceof Float32Array) || v.length !== m) {
    throw new TypeError(`${action}: ${name} must be a Float32Array of ${m} values`);
  }
}

/** `out` when it has `length` values (else a RangeError), or a new array. */
export function outArray<T extends Float32Array | Float64Array | Int32Array | Uint8Array>(
  action: string,
  out: T | undefined,
  length: number,
  make: new (length: number) => T,
): T {
  if (out === undefined) return new make(length);
  if (!(out instanceof make) || out.length !== length) {
    throw new RangeError(`${action}: out must be a ${make.name} of ${length} values`);
  }
  return out;
}
