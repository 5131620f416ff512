/**
 * The quantized Conv (NCHW, groups, strides, pads, dilations) in plain TypeScript,
 * straight from the definition: the yardstick of the im2col + int8 GEMM kernel.
 *
 * ```text
 * x_q = QuantizeLinear(x; s_x, z_x)                       (padding: x_q = z_x, i.e. x = 0)
 * acc[n, m, oy, ox] = sum over ci, i, j of (x_q[n, g*C/G + ci, iy, ix] - z_x) * w[m, ci, i, j]
 *   g = floor(m / (M/G)), iy = oy*sH - padTop + i*dH, ix = ox*sW - padLeft + j*dW
 * y = f32(acc) * f32(s_x * s_w[m]) + bias[m], then max(y, 0) with ReLU
 * ```
 *
 * @module
 */
import { checkQuantizeArgs, checkRowFloats, MAX_K } from "./_q_args.ts";
import { quantizeLinearReference, roundHalfEven } from "./qlinear_reference.ts";

/** Dims [N, C, H, W] of an NCHW tensor. */
export type ConvDims = readonly [n: number, c: number, h: number, w: number];

/** A quantized Conv layer: int8 weights symmetric per output channel, ONNX attributes. */
export interface QConvWeights {
  /** W: [M, C/G, kH, kW] int8, row-major. */
  weights: Int8Array;
  /** [M, C/G, kH, kW] */
  shape: readonly [m: number, cPerGroup: number, kh: number, kw: number];
  /** s_w: [M] float32, one scale per output channel. */
  weightScales: Float32Array;
  /** [M] float32, added after scaling (optional). */
  bias?: Float32Array;
  /** Groups G (default 1). */
  group?: number;
  /** [sH, sW] (default [1, 1]). */
  strides?: readonly [number, number];
  /** [top, left, bottom, right], ONNX order (default zeros). */
  pads?: readonly [number, number, number, number];
  /** [dH, dW] (default [1, 1]). */
  dilations?: readonly [number, number];
  /**
   * How the input is rounded: `uint8` (default) with the layer's calibrated scale and
   * zero point (a QDQ layer), or `int16`, per image and group on its own symmetric
   * grid (a weight-only layer, whose model input is float; {@linkcode qconv16Reference}).
   */
  activations?: "uint8" | "int16";
}

/** Conv attributes with defaults filled in and the output size worked out. */
export interface ConvGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  m: number;
  group: number;
  kh: number;
  kw: number;
  strides: [number, number];
  pads: [number, number, number, number];
  dilations: [number, number];
  oh: number;
  ow: number;
}

function nonNegativeIntegers(action: string, name: string, v: readonly number[], min: number) {
  for (const d of v) {
    if (!Number.isInteger(d) || d < min || d > 0x7fffffff) {
      throw new RangeError(`${action}: ${name} must be integers >= ${min}, got [${v}]`);
    }
  }
}

/** Checks a layer's weights and attributes (shapes of x come later, per call). */
export function checkQConvWeights(action: string, layer: QConvWeights): void {
  const { weights, shape, weightScales, bias, group = 1 } = layer;
  if (!Array.isArray(shape) || shape.length !== 4) {
    throw new TypeError(`${action}: shape must be [M, C/G, kH, kW], got ${JSON.stringify(shape)}`);
  }
  nonNegativeIntegers(action, "shape", shape, 1);
  nonNegativeIntegers(action, "group", [group], 1);
  const [m, cg, kh, kw] = shape;
  if (m % group !== 0) {
    throw new RangeError(`${action}: M = ${m} is not a multiple of group = ${group}`);
  }
  if (cg * kh * kw > MAX_K) {
    throw new RangeError(`${action}: C/G * kH * kW = ${cg * kh * kw} is above ${MAX_K}`);
  }
  if (!(weights instanceof Int8Array) || weights.length !== m * cg * kh * kw) {
    throw new TypeError(`${action}: weights must be an Int8Array of ${m * cg * kh * kw} values`);
  }
  checkRowFloats(action, "weightScales", weightScales, m);
  if (bias !== undefined) checkRowFloats(action, "bias", bias, m);
  const { activations = "uint8" } = layer;
  if (activations !== "uint8" && activations !== "int16") {
    throw new TypeError(`${action}: activations must be "uint8" or "int16", got ${activations}`);
  }
  nonNegativeIntegers(action, "strides", layer.strides ?? [1, 1], 1);
  nonNegativeIntegers(action, "dilations", layer.dilations ?? [1, 1], 1);
  nonNegativeIntegers(action, "pads", layer.pads ?? [0, 0, 0, 0], 0);
  if ((layer.strides ?? [1, 1]).length !== 2 || (layer.dilations ?? [1, 1]).length !== 2) {
    throw new TypeError(`${action}: strides and dilations must have 2 values`);
  }
  if ((layer.pads ?? [0, 0, 0, 0]).length !== 4) {
    throw new TypeError(`${action}: pads must be [top, left, bottom, right]`);
  }
}

/**
 * Checks x's dims against the layer and works out the geometry, [N, M, OH, OW] included.
 *
 * @example
 * ```ts
 * import { convGeometry } from "./qconv_reference.ts";
 *
 * const layer = { weights: new Int8Array(96 * 3 * 11 * 11), shape: [96, 3, 11, 11] as const,
 *   weightScales: new Float32Array(96), strides: [4, 4] as const };
 * const g = convGeometry("Example", layer, [1, 3, 224, 224]);
 * console.log(g.oh, g.ow); // 54 54
 * ```
 */
export function convGeometry(action: string, layer: QConvWeights, dims: ConvDims): ConvGeometry {
  if (!Array.isArray(dims) || dims.length !== 4) {
    throw new TypeError(`${action}: dims must be [N, C, H, W], got ${JSON.stringify(dims)}`);
  }
  nonNegativeIntegers(action, "dims", dims, 0);
  const [n, c, h, w] = dims;
  const [m, cg, kh, kw] = layer.shape;
  const group = layer.group ?? 1;
  if (c !== cg * group) {
    throw new RangeError(
      `${action}: x has ${c} channels, the weights take ${cg} x ${group} groups`,
    );
  }
  const strides: [number, number] = [...(layer.strides ?? [1, 1])] as [number, number];
  const pads = [...(layer.pads ?? [0, 0, 0, 0])] as [number, number, number, number];
  const dilations = [...(layer.dilations ?? [1, 1])] as [number, number];
  const spanH = (kh - 1) * dilations[0] + 1;
  const spanW = (kw - 1) * dilations[1] + 1;
  const inH = h + pads[0] + pads[2];
  const inW = w + pads[1] + pads[3];
  if (inH < spanH || inW < spanW) {
    throw new RangeError(
      `${action}: the ${spanH}x${spanW} kernel does not fit the padded ${inH}x${inW} input`,
    );
  }
  return {
    n,
    c,
    h,
    w,
    m,
    group,
    kh,
    kw,
    strides,
    pads,
    dilations,
    oh: Math.floor((inH - spanH) / strides[0]) + 1,
    ow: Math.floor((inW - spanW) / strides[1]) + 1,
  };
}

/**
 * The exact int32 sums of the quantized Conv for xq: [N, C, H, W] uint8; acc: [N, M, OH, OW].
 *
 * @example
 * ```ts
 * import { qconvAccumulateReference } from "./qconv_reference.ts";
 *
 * // a 1x1 conv, 2 -> 1 channels, on a 1x1 image
 * const layer = { weights: new Int8Array([3, -2]), shape: [1, 2, 1, 1] as const,
 *   weightScales: new Float32Array([1]) };
 * const acc = qconvAccumulateReference(layer, new Uint8Array([130, 120]), [1, 2, 1, 1], 128);
 * console.log(acc[0]); // 22
 * ```
 */
export function qconvAccumulateReference(
  layer: QConvWeights,
  xq: Uint8Array,
  dims: ConvDims,
  xZeroPoint: number,
): Int32Array {
  const action = "Cannot compute the quantized Conv reference";
  checkQConvWeights(action, layer);
  checkQuantizeArgs(action, 1, xZeroPoint);
  const g = convGeometry(action, layer, dims);
  const { n, c, h, w, m, group, kh, kw, oh, ow } = g;
  if (xq.length !== n * c * h * w) {
    throw new RangeError(
      `${action}: x has ${xq.length} values but dims [${dims}] need ${n * c * h * w}`,
    );
  }
  const [sh, sw] = g.strides;
  const [dh, dw] = g.dilations;
  const [pt, pl] = g.pads;
  const cg = c / group;
  const mg = m / group;
  const acc = new Int32Array(n * m * oh * ow);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < m; o++) {
      const c0 = Math.floor(o / mg) * cg;
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let sum = 0;
          for (let ci = 0; ci < cg; ci++) {
            for (let i = 0; i < kh; i++) {
              const iy = oy * sh - pt + i * dh;
              if (iy < 0 || iy >= h) continue;
              for (let j = 0; j < kw; j++) {
                const ix = ox * sw - pl + j * dw;
                if (ix < 0 || ix >= w) continue;
                const xv = xq[((b * c + c0 + ci) * h + iy) * w + ix] - xZeroPoint;
                sum += xv * layer.weights[((o * cg + ci) * kh + i) * kw + j];
              }
            }
          }
          acc[((b * m + o) * oh + oy) * ow + ox] = sum;
        }
      }
    }
  }
  return acc;
}

/**
 * The float epilogue on conv sums: y = f32(acc) * f32(s_x * s_w[m]) + bias[m], then
 * ReLU. acc, y: [N, M, OH, OW]; `pixels` = OH * OW.
 */
export function qconvOutputReference(
  layer: Pick<QConvWeights, "weightScales" | "bias">,
  acc: Int32Array,
  m: number,
  pixels: number,
  xScale: number,
  relu: boolean,
): Float32Array {
  const sx = Math.fround(xScale);
  const y = new Float32Array(acc.length);
  for (let i = 0; i < acc.length; i++) {
    const o = Math.floor(i / pixels) % m;
    let v = Math.fround(Math.fround(acc[i]) * Math.fround(sx * layer.weightScales[o]));
    if (layer.bias !== undefined) v = Math.fround(v + layer.bias[o]);
    y[i] = relu ? Math.max(v, 0) : v;
  }
  return y;
}

/**
 * The whole quantized Conv: quantize x, accumulate, scale to float.
 * x: [N, C, H, W] float32 -> y: [N, M, OH, OW] float32.
 *
 * @example
 * ```ts
 * import { qconvReference } from "./qconv_reference.ts";
 *
 * // 1 -> 1 channel 3x3, pad 1, on a 2x2 image of ones
 * const layer = { weights: new Int8Array(9).fill(1), shape: [1, 1, 3, 3] as const,
 *   weightScales: new Float32Array([0.5]), pads: [1, 1, 1, 1] as const };
 * const y = qconvReference(layer, new Float32Array(4).fill(1), [1, 1, 2, 2], 1, 0, false);
 * console.log(Array.from(y)); // [2, 2, 2, 2]
 * ```
 */
export function qconvReference(
  layer: QConvWeights,
  x: Float32Array,
  dims: ConvDims,
  xScale: number,
  xZeroPoint: number,
  relu: boolean,
): Float32Array {
  const action = "Cannot compute the quantized Conv reference";
  checkQConvWeights(action, layer);
  const g = convGeometry(action, layer, dims);
  const xq = quantizeLinearReference(x, xScale, xZeroPoint);
  const acc = qconvAccumulateReference(layer, xq, dims, xZeroPoint);
  return qconvOutputReference(layer, acc, g.m, g.oh * g.ow, xScale, relu);
}

/**
 * The largest |x_q| of an int16 Conv's grid: min(32767, floor((2^31 - 1) / (128 K))),
 * K = C/G * kH * kW, so that the int32 sums stay exact (wasm/src/qconv.rs).
 *
 * @example
 * ```ts
 * import { conv16QMax } from "./qconv_reference.ts";
 *
 * console.log(conv16QMax(48 * 5 * 5), conv16QMax(3 * 11 * 11)); // 13981 32767
 * ```
 */
export function conv16QMax(k: number): number {
  return Math.min(32767, Math.floor(0x7fffffff / (128 * Math.max(1, k))));
}

/**
 * The Conv of a weight-only int8 layer: each image n and group g of x rounded on its
 * own symmetric grid, then the exact sums and the float epilogue of
 * {@linkcode qconvReference}:
 *
 * ```text
 * s[n, g]  = f32(max |x[n, channels of g]| / q_max) over the finite values (1 when 0)
 * xq       = clamp(roundHalfEven(f32(x / s[n, g])), -q_max, q_max)     (NaN -> 0)
 * y        = f32(acc) * f32(s[n, g] * s_w[m]) + bias[m], then ReLU
 * ```
 *
 * with q_max = {@linkcode conv16QMax}(K). x: [N, C, H, W] -> y: [N, M, OH, OW].
 *
 * @example
 * ```ts
 * import { qconv16Reference } from "./qconv_reference.ts";
 *
 * const layer = { weights: new Int8Array(9).fill(1), shape: [1, 1, 3, 3] as const,
 *   weightScales: new Float32Array([0.5]), pads: [1, 1, 1, 1] as const, activations: "int16" as const };
 * const y = qconv16Reference(layer, new Float32Array(4).fill(1), [1, 1, 2, 2], false);
 * console.log(Array.from(y)); // [2, 2, 2, 2]
 * ```
 */
export function qconv16Reference(
  layer: QConvWeights,
  x: Float32Array,
  dims: ConvDims,
  relu: boolean,
): Float32Array {
  const action = "Cannot compute the int16 Conv reference";
  checkQConvWeights(action, layer);
  const g = convGeometry(action, layer, dims);
  const { n, c, h, w, m, group, kh, kw, oh, ow } = g;
  if (x.length !== n * c * h * w) {
    throw new RangeError(`${action}: x has ${x.length} values but dims [${dims}] need more`);
  }
  const [sh, sw] = g.strides, [dh, dw] = g.dilations, [pt, pl] = g.pads;
  const cg = c / group, mg = m / group, plane = h * w;
  const qMax = conv16QMax(cg * kh * kw);
  const xq = new Int32Array(x.length);
  const scales = new Float32Array(n * group);
  for (let b = 0; b < n; b++) {
    for (let gi = 0; gi < group; gi++) {
      const from = (b * c + gi * cg) * plane, to = from + cg * plane;
      let max = 0;
      for (let i = from; i < to; i++) {
        const a = Math.abs(x[i]);
        if (a < Infinity && a > max) max = a;
      }
      const s0 = Math.fround(max / qMax), s = s0 > 0 ? s0 : 1;
      scales[b * group + gi] = s;
      for (let i = from; i < to; i++) {
        const v = roundHalfEven(Math.fround(x[i] / s));
        xq[i] = Number.isNaN(v) ? 0 : Math.min(qMax, Math.max(-qMax, v));
      }
    }
  }
  const y = new Float32Array(n * m * oh * ow);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < m; o++) {
      const gi = Math.floor(o / mg), c0 = gi * cg;
      const scale = Math.fround(scales[b * group + gi] * layer.weightScales[o]);
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let sum = 0; // |sum| <= K * 128 * q_max < 2^31: exact
          for (let ci = 0; ci < cg; ci++) {
            for (let i = 0; i < kh; i++) {
              const iy = oy * sh - pt + i * dh;
              if (iy < 0 || iy >= h) continue;
              for (let j = 0; j < kw; j++) {
                const ix = ox * sw - pl + j * dw;
                if (ix < 0 || ix >= w) continue;
                sum += xq[((b * c + c0 + ci) * h + iy) * w + ix] *
                  layer.weights[((o * cg + ci) * kh + i) * kw + j];
              }
            }
          }
          let v = Math.fround(Math.fround(sum) * scale);
          if (layer.bias !== undefined) v = Math.fround(v + layer.bias[o]);
          y[((b * m + o) * oh + oy) * ow + ox] = relu ? Math.max(v, 0) : v;
        }
      }
    }
  }
  return y;
}
