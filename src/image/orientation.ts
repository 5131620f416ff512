/**
 * EXIF orientation: cameras store pixels as the sensor saw them and record
 * how to turn them upright in the Orientation tag (1-8). Models were trained
 * on upright photos, so this runs right after decoding, before anything else.
 *
 * @module
 */
import type { DecodedImage, Reduction } from "./decoded_image.ts";

/** The EXIF Orientation values: 1 is upright, 2-8 need a flip and/or a turn. */
export type Orientation = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

/**
 * Whether `value` is a valid EXIF Orientation (an integer 1-8).
 *
 * @example
 * ```ts
 * import { isOrientation } from "./orientation.ts";
 *
 * isOrientation(6); // true
 * isOrientation(0); // false
 * ```
 */
export function isOrientation(value: unknown): value is Orientation {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 8;
}

const TILE = 64;

// Pixels as 32-bit words, so each move copies RGBA at once. Needs a 4-aligned offset.
function words(data: Uint8Array): Uint32Array {
  const aligned = data.byteOffset % 4 === 0 ? data : data.slice();
  return new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >> 2);
}

/**
 * Turns a stored image upright according to its EXIF Orientation, returning
 * a new image (orientation 1 returns `img` itself). Orientations 5-8 swap
 * width and height. Pure: `img` is not modified.
 *
 * | value | stored as             | applied to display          |
 * | ----- | --------------------- | --------------------------- |
 * | 1     | upright               | nothing                     |
 * | 2     | mirrored              | flip left-right             |
 * | 3     | upside down           | rotate 180°                 |
 * | 4     | upside down, mirrored | flip top-bottom             |
 * | 5     | transposed            | transpose (swap x and y)    |
 * | 6     | turned 90° left       | rotate 90° clockwise        |
 * | 7     | transversed           | transverse (anti-diagonal)  |
 * | 8     | turned 90° right      | rotate 90° counterclockwise |
 *
 * @throws {RangeError} If `orientation` is not an integer 1-8, or the data is
 * shorter than `width * height * 4`.
 *
 * @example
 * ```ts
 * import { applyOrientation } from "./orientation.ts";
 *
 * // A 2x1 image, red then green, stored turned left (orientation 6).
 * const stored = { width: 2, height: 1, data: new Uint8Array([255, 0, 0, 255, 0, 255, 0, 255]) };
 * const upright = applyOrientation(stored, 6);
 * // upright is 1x2: red on top, green below
 * ```
 */
export function applyOrientation(img: DecodedImage, orientation: number): DecodedImage {
  if (!isOrientation(orientation)) {
    throw new RangeError(`Cannot apply orientation ${orientation}: expected an integer 1-8`);
  }
  const { width: w, height: h } = img;
  if (img.data.length < w * h * 4) {
    throw new RangeError(
      `Cannot apply orientation: ${w}x${h} needs ${w * h * 4} bytes, got ${img.data.length}`,
    );
  }
  if (orientation === 1) return img;

  // src: [h, w] pixels; dst: [dh, dw] with dw = h for 5-8. For each display
  // pixel (x, y) the source is src[sy * w + sx]; rows are walked with a
  // stride so the inner loop is add-only.
  const swap = orientation >= 5;
  const dw = swap ? h : w;
  const dh = swap ? w : h;
  const src = words(img.data);
  const out = new Uint8Array(w * h * 4);
  const dst = new Uint32Array(out.buffer);
  // Source index of display (0, y) is base + y * dy; moving right adds dx.
  let base: number, dx: number, dy: number;
  switch (orientation) {
    case 2: // sx = w-1-x, sy = y
      [base, dx, dy] = [w - 1, -1, w];
      break;
    case 3: // sx = w-1-x, sy = h-1-y
      [base, dx, dy] = [h * w - 1, -1, -w];
      break;
    case 4: // sx = x, sy = h-1-y
      [base, dx, dy] = [(h - 1) * w, 1, -w];
      break;
    case 5: // sx = y, sy = x
      [base, dx, dy] = [0, w, 1];
      break;
    case 6: // sx = y, sy = h-1-x
      [base, dx, dy] = [(h - 1) * w, -w, 1];
      break;
    case 7: // sx = w-1-y, sy = h-1-x
      [base, dx, dy] = [h * w - 1, -w, -1];
      break;
    default: // 8: sx = w-1-y, sy = x
      [base, dx, dy] = [w - 1, w, -1];
  }
  // In 64x64 tiles: for 5-8 the source is read down its columns, and a tile's
  // source rows stay in cache (about 5x faster than whole rows on 12 megapixels).
  for (let ty = 0; ty < dh; ty += TILE) {
    const yEnd = Math.min(ty + TILE, dh);
    for (let tx = 0; tx < dw; tx += TILE) {
      const xEnd = Math.min(tx + TILE, dw);
      for (let y = ty; y < yEnd; y++) {
        let s = base + y * dy + tx * dx;
        for (let o = y * dw + tx, end = y * dw + xEnd; o < end; o++, s += dx) dst[o] = src[s];
      }
    }
  }
  const turned: DecodedImage = { width: dw, height: dh, data: out };
  if (img.reduction) turned.reduction = orientReduction(img.reduction, w, h, orientation);
  return turned;
}

// A reduced image's geometry after the same turn: 5-8 swap the axes first, then 2, 3,
// 6, 7 mirror x and 3, 4, 7, 8 mirror y (display coordinates); a mirror puts the
// overhang of the last pixel in front: left' = W - left - w * scale.
function orientReduction(r: Reduction, w: number, h: number, o: Orientation): Reduction {
  let [W, H, left, top, rw, rh] = [r.width, r.height, r.left, r.top, w, h];
  if (o >= 5) [W, H, left, top, rw, rh] = [H, W, top, left, rh, rw];
  if (o === 2 || o === 3 || o === 6 || o === 7) left = W - left - rw * r.scale;
  if (o === 3 || o === 4 || o === 7 || o === 8) top = H - top - rh * r.scale;
  return { width: W, height: H, scale: r.scale, left, top };
}
