/**
 * The one in-memory image type of the image path: what decoding returns and
 * what orientation, resizing and preprocessing take.
 *
 * @module
 */

/**
 * An 8-bit RGBA image, row-major, 4 bytes per pixel:
 * `data[(y * width + x) * 4 + c]` for c in R, G, B, A.
 *
 * Alpha is carried but never used: the image path treats every image as
 * opaque and reads only R, G and B, as Pillow's `convert("RGB")` does.
 */
export interface DecodedImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** RGBA bytes, `width * height * 4` long. */
  data: Uint8Array;
}
