/**
 * The fast separable resample: a horizontal pass over only the source rows
 * the output needs, then a vertical pass, both reading precomputed
 * {@linkcode Taps}. Works in float; alpha is dropped.
 *
 * Checked against the direct 2-D definition in `_resize_reference.ts`.
 *
 * @module
 */
import type { DecodedImage } from "./decoded_image.ts";
import type { Taps } from "./_filter.ts";
import { _isResident, resampleResidentWasm, resampleRgbWasm } from "./jpeg_fast.ts";

let wasmFailed = false;
let wasmEnabled = true;

/**
 * Turns the WebAssembly kernel of {@linkcode resampleRgb} off (or back on), so a benchmark
 * can time the reference in place; returns the previous setting.
 */
export function useWasmResample(enabled: boolean): boolean {
  const was = wasmEnabled;
  wasmEnabled = enabled;
  return was;
}

/**
 * Resamples the RGB channels of `img` with per-axis taps: the WebAssembly kernel
 * (`resampleResidentWasm` for pixels still in the decoder's instance, else
 * `resampleRgbWasm`; same results bit for bit) when the decoder module is available,
 * else {@linkcode resampleRgbReference}.
 *
 * img: RGBA u8 [H, W, 4] -> returns RGB float [yt.length, xt.length, 3], in
 * 0..255, not rounded. Outputs with no taps (padding) are 0. The result may share its
 * memory with the next call's (the WebAssembly path reuses one array): read it, or copy
 * it, before resampling again.
 */
export function resampleRgb(img: DecodedImage, xt: Taps, yt: Taps): Float32Array {
  const rows = usedRows(yt);
  if (!rows) return new Float32Array(yt.length * xt.length * 3);
  if (wasmEnabled && !wasmFailed) {
    try {
      // A fast-path decode is resampled where its pixels lie (no copy out of the module).
      const out = resampleResidentWasm(img, rows, xt, yt) ??
        resampleRgbWasm(img.data, img.width, rows, xt, yt);
      if (out) return out;
    } catch (e) {
      // A trap (a bug) or no memory: the reference gives the same result, so say so once.
      wasmFailed = true;
      console.warn(`Cannot resample in WebAssembly, using JavaScript from now on: ${e}`);
    }
  }
  return resampleRgbReference(img, xt, yt);
}

// Only the source rows some output row reads ([first, end)), so a center crop skips the rest.
function usedRows(yt: Taps): [number, number] | undefined {
  let rowLo = Infinity, rowHi = -Infinity;
  for (let k = 0; k < yt.length; k++) {
    if (yt.count[k] === 0) continue;
    rowLo = Math.min(rowLo, yt.start[k]);
    rowHi = Math.max(rowHi, yt.start[k] + yt.count[k]);
  }
  return rowLo < rowHi ? [rowLo, rowHi] : undefined;
}

/**
 * The plain resample that {@linkcode resampleRgb}'s WebAssembly kernel is checked against:
 * horizontal sums in float64 stored as float32, then vertical steps on float32 rows.
 *
 * img: RGBA u8 [H, W, 4] -> returns RGB float [yt.length, xt.length, 3], in
 * 0..255, not rounded. Outputs with no taps (padding) are 0.
 */
export function resampleRgbReference(img: DecodedImage, xt: Taps, yt: Taps): Float32Array {
  const src = img.data;
  const srcW = img.width;
  const outW = xt.length;
  const outH = yt.length;
  const out = new Float32Array(outH * outW * 3);
  const rows = usedRows(yt);
  if (!rows) return out;
  const [rowLo, rowHi] = rows;

  // Horizontal pass. tmp: RGB float [rowHi - rowLo, outW, 3]
  const tmp = new Float32Array((rowHi - rowLo) * outW * 3);
  const { start: xs, count: xn, weights: xw, stride: xStride } = xt;
  let t = 0;
  for (let row = rowLo; row < rowHi; row++) {
    const rowBase = row * srcW * 4;
    for (let ox = 0; ox < outW; ox++) {
      const n = xn[ox];
      let p = rowBase + xs[ox] * 4;
      let wi = ox * xStride;
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < n; k++, p += 4) {
        const w = xw[wi++];
        r += w * src[p];
        g += w * src[p + 1];
        b += w * src[p + 2];
      }
      tmp[t++] = r;
      tmp[t++] = g;
      tmp[t++] = b;
    }
  }

  // Vertical pass, a whole row at a time so both reads and writes are contiguous.
  const rowLen = outW * 3;
  const { start: ys, count: yn, weights: yw, stride: yStride } = yt;
  for (let oy = 0; oy < outH; oy++) {
    const n = yn[oy];
    const o = oy * rowLen;
    for (let k = 0; k < n; k++) {
      const w = yw[oy * yStride + k];
      const s = (ys[oy] + k - rowLo) * rowLen;
      for (let i = 0; i < rowLen; i++) out[o + i] += w * tmp[s + i];
    }
  }
  return out;
}

/** Packs RGB float [h, w, 3] into an opaque RGBA image, rounding to nearest and clamping. */
export function rgbToRgba(rgb: Float32Array, width: number, height: number): DecodedImage {
  const data = new Uint8Array(width * height * 4);
  const clamped = new Uint8ClampedArray(data.buffer); // assignment rounds and clamps
  for (let i = 0, o = 0; i < rgb.length; i += 3, o += 4) {
    clamped[o] = rgb[i];
    clamped[o + 1] = rgb[i + 1];
    clamped[o + 2] = rgb[i + 2];
    clamped[o + 3] = 255;
  }
  return { width, height, data };
}

/** Throws a RangeError unless `img` has positive integer sizes and enough bytes. */
export function checkImage(img: DecodedImage, action: string): void {
  const { width, height } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`Cannot ${action}: image size ${width}x${height} is not positive`);
  }
  // The fast decoder's images have exactly their size; reading `data` would copy them out.
  if (_isResident(img)) return;
  const { data } = img;
  if (data.length < width * height * 4) {
    throw new RangeError(
      `Cannot ${action}: a ${width}x${height} RGBA image needs ${width * height * 4} bytes, ` +
        `got ${data.length}`,
    );
  }
}

/** Throws a RangeError unless `width` and `height` are positive integers. */
export function checkSize(width: number, height: number, action: string): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`Cannot ${action}: size ${width}x${height} is not positive integers`);
  }
}
