/**
 * Argument checks shared by the LRN implementations, so both reject the same
 * inputs with the same messages.
 *
 * The argument types live here too, so the reference imports this file and not
 * the other way round.
 *
 * @module
 */

/** Tensor dims [N, C, H, W] of an NCHW float32 tensor. */
export type LrnDims = readonly [n: number, c: number, h: number, w: number];

/**
 * LRN attributes as in ONNX (opsets 1 and 13). ONNX stores alpha, beta and bias
 * as float32, so both implementations round them to float32 first.
 */
export interface LrnParams {
  /** Channels in the window (>= 1); the window of channel c is
   * [c - floor((size - 1) / 2), c + ceil((size - 1) / 2)], clipped to [0, C). */
  size: number;
  /** Scale of the window's sum of squares (ONNX default 0.0001). */
  alpha?: number;
  /** Exponent of the denominator (ONNX default 0.75, AlexNet's value). */
  beta?: number;
  /** Added to the scaled sum (ONNX default 1). */
  bias?: number;
}

/** Checked arguments: dims split out, attributes with ONNX defaults, rounded to float32. */
export interface LrnArgs {
  n: number;
  c: number;
  h: number;
  w: number;
  /** h * w */
  hw: number;
  size: number;
  alpha: number;
  beta: number;
  bias: number;
}

/** Throws a TypeError or RangeError starting with `action` when an argument is unusable. */
export function checkLrnArgs(
  action: string,
  x: Float32Array,
  dims: LrnDims,
  params: LrnParams,
  out?: Float32Array | Float64Array,
): LrnArgs {
  if (!(x instanceof Float32Array)) {
    throw new TypeError(`${action}: x must be a Float32Array`);
  }
  if (!Array.isArray(dims) || dims.length !== 4) {
    throw new TypeError(`${action}: dims must be [N, C, H, W], got ${JSON.stringify(dims)}`);
  }
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new RangeError(`${action}: dims must be non-negative integers, got [${dims}]`);
    }
  }
  const [n, c, h, w] = dims;
  if (n * c * h * w !== x.length) {
    throw new RangeError(
      `${action}: x has ${x.length} values but dims [${dims}] need ${n * c * h * w}`,
    );
  }
  if (out !== undefined && out.length !== x.length) {
    throw new RangeError(`${action}: out has ${out.length} values, x has ${x.length}`);
  }
  const { size } = params;
  if (!Number.isInteger(size) || size < 1 || size > 0x7fffffff) {
    throw new RangeError(`${action}: size must be an integer >= 1, got ${size}`);
  }
  const attr = (name: "alpha" | "beta" | "bias", fallback: number): number => {
    const v = params[name] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(Math.fround(v))) {
      throw new RangeError(`${action}: ${name} must be a finite float32, got ${v}`);
    }
    return Math.fround(v);
  };
  return {
    n,
    c,
    h,
    w,
    hw: h * w,
    size,
    alpha: attr("alpha", 1e-4),
    beta: attr("beta", 0.75),
    bias: attr("bias", 1),
  };
}
