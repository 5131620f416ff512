/**
 * Draws the explorer's pictures: the first convolution's filters as RGB
 * tiles and a layer's feature maps as a grid of heat-mapped tiles. Every
 * tile is min-max normalized on its own, so each shows its full contrast.
 *
 * @module
 */
import type { Pixels } from "./_png.ts";

/** Gap and border colour between tiles. */
const GAP = 200;

/** An RGB colour map (dark purple to light yellow, like matplotlib's magma), 256 entries. */
const MAGMA = (() => {
  const stops = [
    [0, 0, 4],
    [59, 15, 112],
    [140, 41, 129],
    [222, 73, 104],
    [254, 159, 109],
    [252, 253, 191],
  ];
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1);
    const k = Math.min(Math.floor(t), stops.length - 2), f = t - k;
    for (let c = 0; c < 3; c++) {
      lut[i * 3 + c] = Math.round(stops[k][c] + (stops[k + 1][c] - stops[k][c]) * f);
    }
  }
  return lut;
})();

function range(values: Float32Array, start: number, end: number): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (let i = start; i < end; i++) {
    const v = values[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** A canvas of `count` tiles of `tw` x `th` pixels in `cols` columns, 2-px gaps. */
function canvas(count: number, cols: number, tw: number, th: number) {
  const rows = Math.ceil(count / cols);
  const width = cols * (tw + 2) + 2, height = rows * (th + 2) + 2;
  const data = new Uint8Array(width * height * 3).fill(GAP);
  const origin = (i: number) => [2 + (i % cols) * (tw + 2), 2 + Math.floor(i / cols) * (th + 2)];
  return { width, height, data, origin };
}

/**
 * The filters w: [O, I, kH, kW] as an RGB grid, `scale` pixels per weight.
 * Three input channels are drawn as colour (`bgr` swaps them back to RGB for
 * models fed BGR), any other count as the gray mean over channels.
 *
 * @example
 * ```ts
 * const grid = drawFilters(weights, [96, 3, 11, 11], { scale: 4 }); // 12 x 8 tiles
 * ```
 */
export function drawFilters(
  values: Float32Array,
  dims: readonly number[],
  options: { scale?: number; bgr?: boolean } = {},
): Pixels {
  const [count, inputs, kh, kw] = dims;
  const { scale = 4, bgr = false } = options;
  const size = inputs * kh * kw;
  const cols = Math.ceil(Math.sqrt(count * 1.5));
  const { width, height, data, origin } = canvas(count, cols, kw * scale, kh * scale);
  const order = bgr ? [2, 1, 0] : [0, 1, 2];
  for (let f = 0; f < count; f++) {
    const base = f * size;
    const [lo, hi] = range(values, base, base + size);
    const k = hi > lo ? 255 / (hi - lo) : 0;
    const [x0, y0] = origin(f);
    for (let y = 0; y < kh * scale; y++) {
      for (let x = 0; x < kw * scale; x++) {
        const p = Math.floor(y / scale) * kw + Math.floor(x / scale);
        const o = ((y0 + y) * width + x0 + x) * 3;
        for (let c = 0; c < 3; c++) {
          let v: number;
          if (inputs === 3) v = values[base + order[c] * kh * kw + p];
          else {
            v = 0;
            for (let i = 0; i < inputs; i++) v += values[base + i * kh * kw + p] / inputs;
          }
          data[o + c] = Math.round((v - lo) * k);
        }
      }
    }
  }
  return { width, height, channels: 3, data };
}

/** How the feature maps were laid out, for response headers. */
export interface FeatureGrid extends Pixels {
  /** Maps drawn (the first ones). */
  shown: number;
  cols: number;
  rows: number;
  /** Pixels per activation. */
  scale: number;
}

/**
 * The first `limit` maps of x: [C, H, W] as a heat-mapped grid; small maps
 * are enlarged (nearest neighbour) to about 56 pixels a side.
 *
 * @example
 * ```ts
 * const grid = drawFeatureMaps(conv1, [96, 54, 54]); // 64 maps, 8 x 8
 * ```
 */
export function drawFeatureMaps(
  values: Float32Array,
  dims: readonly number[],
  limit = 64,
): FeatureGrid {
  const [c, h, w] = dims;
  const shown = Math.min(c, limit);
  const cols = Math.ceil(Math.sqrt(shown));
  const scale = Math.max(1, Math.round(56 / Math.max(h, w)));
  const { width, height, data, origin } = canvas(shown, cols, w * scale, h * scale);
  const plane = h * w;
  for (let m = 0; m < shown; m++) {
    const [lo, hi] = range(values, m * plane, (m + 1) * plane);
    const k = hi > lo ? 255 / (hi - lo) : 0;
    const [x0, y0] = origin(m);
    for (let y = 0; y < h * scale; y++) {
      for (let x = 0; x < w * scale; x++) {
        const v = values[m * plane + Math.floor(y / scale) * w + Math.floor(x / scale)];
        const i = Math.round((v - lo) * k) * 3;
        const o = ((y0 + y) * width + x0 + x) * 3;
        data[o] = MAGMA[i];
        data[o + 1] = MAGMA[i + 1];
        data[o + 2] = MAGMA[i + 2];
      }
    }
  }
  return {
    width,
    height,
    channels: 3,
    data,
    shown,
    cols,
    rows: Math.ceil(shown / cols),
    scale,
  };
}
