/**
 * The plain reference for the streaming PNG decoder's reduced output (`png_stream.ts`): a box
 * mean over a full-size RGBA image, written the obvious way. Tests compare the two bit for bit.
 *
 * @module
 */
import type { DecodedImage } from "./decoded_image.ts";

/**
 * Reduces `img` by `f`: pixel (i, j) of the `ceil(width / f) x ceil(height / f)` result is,
 * per channel, the mean of the pixels of `[i f, (i + 1) f) x [j f, (j + 1) f)` inside the
 * image, rounded half up. The result's `reduction` says so.
 */
export function reduceByBoxMean(img: DecodedImage, f: number): DecodedImage {
  const width = Math.ceil(img.width / f), height = Math.ceil(img.height / f);
  const data = new Uint8Array(width * height * 4);
  for (let j = 0; j < height; j++) {
    for (let i = 0; i < width; i++) {
      for (let c = 0; c < 4; c++) {
        let sum = 0, n = 0;
        for (let y = j * f; y < Math.min((j + 1) * f, img.height); y++) {
          for (let x = i * f; x < Math.min((i + 1) * f, img.width); x++) {
            sum += img.data[(y * img.width + x) * 4 + c];
            n++;
          }
        }
        data[(j * width + i) * 4 + c] = Math.floor((sum + Math.floor(n / 2)) / n);
      }
    }
  }
  const reduction = { width: img.width, height: img.height, scale: f, left: 0, top: 0 };
  return { width, height, data, reduction };
}
