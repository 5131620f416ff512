/**
 * Weight tables for a 1-D antialiased triangle (bilinear) resample, computed
 * as Pillow's `Image.resize(BILINEAR)` and torchvision's `antialias=True` do:
 * output pixel i is centred on input coordinate (i + 0.5) * in / out, and when
 * shrinking the triangle widens by the scale factor, so every input pixel
 * contributes (no aliasing). Weights are normalized to sum to 1.
 *
 * @module
 */

/**
 * Taps of one axis: output k reads `count[k]` consecutive input pixels from
 * `start[k]`, weighted by `weights[k * stride + t]` for t < count[k]. An
 * output outside the resized image (crop padding) has count 0.
 */
export interface Taps {
  /** Number of outputs. */
  length: number;
  /** First input pixel of each output: [length]. */
  start: Int32Array;
  /** Number of input pixels of each output: [length]. */
  count: Int32Array;
  /** Weights, `stride` per output: [length, stride]. */
  weights: Float64Array;
  /** Room per output in `weights`. */
  stride: number;
}

const triangle = (x: number) => {
  const a = Math.abs(x);
  return a < 1 ? 1 - a : 0;
};

/**
 * Taps of outputs `first .. first + length - 1` of a resample from `inSize`
 * to `outSize` pixels. Asking for a window instead of all outputs is how a
 * center crop is done without resizing the pixels it throws away; the taps
 * of each output are the same either way.
 */
export function triangleTaps(
  inSize: number,
  outSize: number,
  first = 0,
  length = outSize,
): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // triangle support 1, widened when shrinking
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(length);
  const count = new Int32Array(length);
  const weights = new Float64Array(length * stride);
  for (let k = 0; k < length; k++) {
    const i = first + k;
    if (i < 0 || i >= outSize) continue; // padding: no taps, value 0
    const center = (i + 0.5) * scale;
    // Pillow truncates with (int); clamping at 0 makes that a floor.
    let lo = Math.max(Math.trunc(center - support + 0.5), 0);
    let hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    // Drop end taps of weight 0 (e.g. same-size resizes): same result, less work.
    while (hi - lo > 1 && triangle((lo - center + 0.5) / filterScale) === 0) lo++;
    while (hi - lo > 1 && triangle((hi - 1 - center + 0.5) / filterScale) === 0) hi--;
    let sum = 0;
    const base = k * stride;
    for (let j = lo; j < hi; j++) {
      const w = triangle((j - center + 0.5) / filterScale);
      weights[base + j - lo] = w;
      sum += w;
    }
    for (let t = 0; t < hi - lo; t++) weights[base + t] /= sum;
    start[k] = lo;
    count[k] = hi - lo;
  }
  return { length, start, count, weights, stride };
}

/**
 * Taps for resizing a reduced decode as if from its full-size picture: output
 * `first + k` of a resample of the full-size axis (`fullSize` pixels) to
 * `outSize` is centred at full-size coordinate `(i + 0.5) * fullSize / outSize`,
 * which is `(c - left) / scale` in the `pixels` reduced pixels (see
 * `Reduction` in decoded_image.ts), with the full-size filter's half-width in
 * reduced pixels. (Narrowing the triangle to make up for the box mean already
 * in each reduced pixel was tried and measured worse on the fixtures.)
 */
export function reducedTriangleTaps(
  pixels: number,
  map: { fullSize: number; scale: number; left: number },
  outSize: number,
  first = 0,
  length = outSize,
): Taps {
  const { fullSize, scale: d, left } = map;
  const step = fullSize / outSize;
  const support = Math.max(Math.max(step, 1) / d, 0.6); // >= 0.6: every output gets a tap
  const stride = Math.ceil(support) * 2 + 2;
  const start = new Int32Array(length);
  const count = new Int32Array(length);
  const weights = new Float64Array(length * stride);
  for (let k = 0; k < length; k++) {
    const i = first + k;
    if (i < 0 || i >= outSize) continue; // padding: no taps, value 0
    const center = ((i + 0.5) * step - left) / d;
    const lo = Math.max(Math.floor(center - support - 0.5), 0);
    const hi = Math.min(Math.ceil(center + support + 0.5), pixels);
    let sum = 0, n = 0, from = -1;
    const base = k * stride;
    for (let j = lo; j < hi; j++) {
      const w = triangle((j + 0.5 - center) / support);
      if (w === 0 && n === 0) continue; // leading zero taps
      if (from < 0) from = j;
      weights[base + n++] = w;
      sum += w;
    }
    while (n > 1 && weights[base + n - 1] === 0) n--;
    if (from < 0 || sum === 0) {
      // Centre past the last pixel (cannot happen for scale >= 1): nearest pixel.
      from = Math.min(Math.max(Math.floor(center), 0), pixels - 1);
      weights[base] = 1;
      n = 1;
      sum = 1;
    }
    for (let t = 0; t < n; t++) weights[base + t] /= sum;
    start[k] = from;
    count[k] = n;
  }
  return { length, start, count, weights, stride };
}
