/**
 * The plain reference for the resize kernel: each output pixel computed
 * straight from the 2-D definition, a weighted mean of every input pixel
 * under a separable triangle window, in float64. O(out pixels x in pixels):
 * for tests only.
 *
 * @module
 */
import type { DecodedImage } from "./decoded_image.ts";

const triangle = (x: number) => Math.max(0, 1 - Math.abs(x));

/**
 * Antialiased bilinear resize by definition.
 *
 * img: RGBA u8 [H, W, 4] -> RGB float64 [height, width, 3], 0..255.
 *
 * Output pixel (ox, oy) is centred on input point ((ox + 0.5) * W / width,
 * (oy + 0.5) * H / height); input pixel (x, y), centred on (x + 0.5, y + 0.5),
 * weighs tri(dx / fx) * tri(dy / fy) where f = max(in / out, 1) widens the
 * triangle when shrinking. Weights are normalized over the pixels inside the
 * image (so edges are not darkened).
 */
export function resizeRgbReference(img: DecodedImage, width: number, height: number): Float64Array {
  const { width: W, height: H, data } = img;
  const sx = W / width, sy = H / height;
  const fx = Math.max(sx, 1), fy = Math.max(sy, 1);
  const out = new Float64Array(width * height * 3);
  for (let oy = 0; oy < height; oy++) {
    const cy = (oy + 0.5) * sy;
    for (let ox = 0; ox < width; ox++) {
      const cx = (ox + 0.5) * sx;
      let r = 0, g = 0, b = 0, sum = 0;
      for (let y = 0; y < H; y++) {
        const wy = triangle((y + 0.5 - cy) / fy);
        if (wy === 0) continue;
        for (let x = 0; x < W; x++) {
          const w = wy * triangle((x + 0.5 - cx) / fx);
          const p = (y * W + x) * 4;
          r += w * data[p];
          g += w * data[p + 1];
          b += w * data[p + 2];
          sum += w;
        }
      }
      const o = (oy * width + ox) * 3;
      out[o] = r / sum;
      out[o + 1] = g / sum;
      out[o + 2] = b / sum;
    }
  }
  return out;
}
