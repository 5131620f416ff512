/**
 * PNG encoding for the explorer's images, with imagescript's pure-JS encoder
 * (already a dependency for decoding; its `png/src` modules load no native
 * addon and no WASM).
 *
 * @module
 */
import { encode } from "imagescript/png/src/png.mjs";

/** Pixels to encode: rows of `width * channels` bytes, top to bottom. */
export interface Pixels {
  width: number;
  height: number;
  /** 1 gray, 3 RGB, 4 RGBA. */
  channels: 1 | 3 | 4;
  data: Uint8Array;
}

type Encode = (
  data: Uint8Array,
  options: { width: number; height: number; channels: number; level?: number },
) => Uint8Array;

/**
 * Encodes 8-bit pixels as a PNG (zlib level 6).
 *
 * @throws {RangeError} If `data` does not hold `width * height * channels` bytes.
 *
 * @example
 * ```ts
 * const png = encodePng({ width: 2, height: 1, channels: 1, data: new Uint8Array([0, 255]) });
 * png.subarray(1, 4); // "PNG"
 * ```
 */
export function encodePng(pixels: Pixels): Uint8Array<ArrayBuffer> {
  const { width, height, channels, data } = pixels;
  if (!(width > 0 && height > 0) || data.length !== width * height * channels) {
    throw new RangeError(
      `Cannot encode PNG: ${data.length} bytes for ${width}x${height}x${channels}`,
    );
  }
  const png = (encode as Encode)(data, { width, height, channels, level: 6 });
  return new Uint8Array(png);
}
