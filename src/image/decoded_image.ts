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
  /**
   * Set when the pixels are a reduced decode (a JPEG decoded at 1/2, 1/4 or
   * 1/8 scale in the DCT domain): where they sit in the full-size picture, so
   * preprocessing can resize as if from the full-size image.
   */
  reduction?: Reduction;
}

/**
 * How a reduced image maps onto the full-size picture it stands for: reduced
 * pixel (i, j) is the mean of the full-size pixels in
 * `[left + i * scale, left + (i + 1) * scale) x [top + j * scale, top + (j + 1) * scale)`.
 * `left`/`top` are 0 or negative: the last reduced pixel may reach past the
 * picture's edge (padding blocks), and a mirror moves that overhang to the front.
 */
export interface Reduction {
  /** Full-size width and height. */
  width: number;
  height: number;
  /** Full-size pixels per reduced pixel along each axis. */
  scale: number;
  /** Full-size coordinate of the reduced image's left and top edges. */
  left: number;
  top: number;
}
