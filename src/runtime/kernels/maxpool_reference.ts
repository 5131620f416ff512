/**
 * ONNX MaxPool (2-D, NCHW float32) in plain TypeScript, straight from the definition:
 * the yardstick of the WebAssembly kernel.
 *
 * ```text
 * y[n, c, oy, ox] = max over i < kH, j < kW of x[n, c, iy, ix]   (taps in the padding skipped)
 *   iy = oy * sH - padTop + i * dH, ix = ox * sW - padLeft + j * dW
 * OH = floor or ceil((H + padTop + padBottom - ((kH - 1) * dH + 1)) / sH) + 1
 * ```
 *
 * The max starts at -Infinity and takes a value only when it is greater (NaN never
 * wins). With ceil mode a window must still start inside the input or its top/left
 * padding; {@linkcode poolGeometry} refuses attributes where it would not (onnxruntime
 * versions differ there).
 *
 * @module
 */
import type { ConvDims } from "./qconv_reference.ts";

/** MaxPool attributes, as ONNX names them (2-D only). */
export interface MaxPoolParams {
  /** [kH, kW] */
  kernelShape: readonly [number, number];
  /** [sH, sW] (default [1, 1]). */
  strides?: readonly [number, number];
  /** [top, left, bottom, right] (default zeros). */
  pads?: readonly [number, number, number, number];
  /** [dH, dW] (default [1, 1]). */
  dilations?: readonly [number, number];
  /** Output size rounded up instead of down (default false). */
  ceilMode?: boolean;
}

/** Pool attributes with defaults filled in and the output size worked out. */
export interface PoolGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  strides: [number, number];
  pads: [number, number, number, number];
  dilations: [number, number];
  oh: number;
  ow: number;
}

function checkInts(action: string, name: string, v: readonly number[], min: number, count: number) {
  if (!Array.isArray(v) || v.length !== count) {
    throw new TypeError(`${action}: ${name} must have ${count} values, got ${JSON.stringify(v)}`);
  }
  for (const d of v) {
    if (!Number.isInteger(d) || d < min || d > 0x7fffffff) {
      throw new RangeError(`${action}: ${name} must be integers >= ${min}, got [${v}]`);
    }
  }
}

/** One output size: floor or ceil of (in + pads - span) / stride, plus 1. */
function outSize(len: number, pad0: number, pad1: number, span: number, s: number, ceil: boolean) {
  const room = len + pad0 + pad1 - span;
  return (ceil ? Math.ceil(room / s) : Math.floor(room / s)) + 1;
}

/**
 * Checks x's dims and the attributes and works out the output size.
 *
 * @example
 * ```ts
 * import { poolGeometry } from "./maxpool_reference.ts";
 *
 * // AlexNet's pool1: 3x3, stride 2, ceil mode
 * const g = poolGeometry("Example", { kernelShape: [3, 3], strides: [2, 2], ceilMode: true },
 *   [1, 96, 54, 54]);
 * console.log(g.oh, g.ow); // 27 27
 * ```
 */
export function poolGeometry(action: string, p: MaxPoolParams, dims: ConvDims): PoolGeometry {
  checkInts(action, "dims", dims, 0, 4);
  checkInts(action, "kernelShape", p.kernelShape, 1, 2);
  const strides = [...(p.strides ?? [1, 1])] as [number, number];
  const pads = [...(p.pads ?? [0, 0, 0, 0])] as [number, number, number, number];
  const dilations = [...(p.dilations ?? [1, 1])] as [number, number];
  checkInts(action, "strides", strides, 1, 2);
  checkInts(action, "pads", pads, 0, 4);
  checkInts(action, "dilations", dilations, 1, 2);
  const [n, c, h, w] = dims;
  const [kh, kw] = p.kernelShape;
  const spanH = (kh - 1) * dilations[0] + 1;
  const spanW = (kw - 1) * dilations[1] + 1;
  if (h === 0 || w === 0 || h + pads[0] + pads[2] < spanH || w + pads[1] + pads[3] < spanW) {
    throw new RangeError(
      `${action}: the ${spanH}x${spanW} window does not fit the ${h}x${w} input`,
    );
  }
  if (pads[0] >= spanH || pads[1] >= spanW || pads[2] >= spanH || pads[3] >= spanW) {
    throw new RangeError(`${action}: pads [${pads}] must be smaller than the window`);
  }
  const ceil = p.ceilMode ?? false;
  const oh = outSize(h, pads[0], pads[2], spanH, strides[0], ceil);
  const ow = outSize(w, pads[1], pads[3], spanW, strides[1], ceil);
  if ((oh - 1) * strides[0] >= h + pads[0] || (ow - 1) * strides[1] >= w + pads[1]) {
    throw new RangeError(
      `${action}: with ceil mode the last window would start past the input (${oh}x${ow} output)`,
    );
  }
  return { n, c, h, w, kh, kw, strides, pads, dilations, oh, ow };
}

/**
 * MaxPool of x: [N, C, H, W] float32 -> y: [N, C, OH, OW] float32.
 *
 * @example
 * ```ts
 * import { maxPoolReference } from "./maxpool_reference.ts";
 *
 * // 2x2 windows, stride 2, on a 1-channel 2x4 image
 * const y = maxPoolReference(new Float32Array([1, 5, 2, 0, 3, 4, -1, 7]), [1, 1, 2, 4],
 *   { kernelShape: [2, 2], strides: [2, 2] });
 * console.log(Array.from(y)); // [5, 7]
 * ```
 */
export function maxPoolReference(
  x: Float32Array,
  dims: ConvDims,
  params: MaxPoolParams,
): Float32Array {
  const action = "Cannot compute the MaxPool reference";
  const g = poolGeometry(action, params, dims);
  const { n, c, h, w, kh, kw, oh, ow } = g;
  if (x.length !== n * c * h * w) {
    throw new RangeError(
      `${action}: x has ${x.length} values but dims [${dims}] need ${n * c * h * w}`,
    );
  }
  const y = new Float32Array(n * c * oh * ow);
  for (let plane = 0; plane < n * c; plane++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let m = -Infinity;
        for (let i = 0; i < kh; i++) {
          const iy = oy * g.strides[0] - g.pads[0] + i * g.dilations[0];
          if (iy < 0 || iy >= h) continue;
          for (let j = 0; j < kw; j++) {
            const ix = ox * g.strides[1] - g.pads[1] + j * g.dilations[1];
            if (ix < 0 || ix >= w) continue;
            const v = x[(plane * h + iy) * w + ix];
            if (v > m) m = v;
          }
        }
        y[(plane * oh + oy) * ow + ox] = m;
      }
    }
  }
  return y;
}
