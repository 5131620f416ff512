/**
 * Antialiased bilinear resizing, the way Pillow's `Image.resize(BILINEAR)`
 * and torchvision's `antialias=True` do it: a triangle filter that widens by
 * the scale factor when shrinking, separable, with per-output weight tables.
 *
 * @module
 */
import type { DecodedImage } from "./decoded_image.ts";
import { triangleTaps } from "./_filter.ts";
import { checkImage, checkSize, resampleRgb, rgbToRgba } from "./_resample.ts";

/**
 * Resizes an image to `width` x `height` with an antialiased triangle
 * (bilinear) filter, ignoring aspect ratio.
 *
 * Works in float internally and rounds once at the end, so the result is
 * within 0.5 of the exact filter output. The result is opaque: alpha is set
 * to 255 (the image path ignores alpha).
 *
 * @throws {RangeError} If a size is not a positive integer or `img.data` is
 * too short.
 *
 * @example
 * ```ts
 * import { resizeRgba } from "./resize.ts";
 *
 * const img = { width: 4, height: 2, data: new Uint8Array(4 * 2 * 4).fill(200) };
 * const small = resizeRgba(img, 2, 1);
 * small.data; // Uint8Array [200, 200, 200, 255, 200, 200, 200, 255]
 * ```
 */
export function resizeRgba(img: DecodedImage, width: number, height: number): DecodedImage {
  checkImage(img, "resize image");
  checkSize(width, height, "resize image");
  const rgb = resampleRgb(img, triangleTaps(img.width, width), triangleTaps(img.height, height));
  return rgbToRgba(rgb, width, height);
}
