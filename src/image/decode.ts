/**
 * Request bytes to an upright RGBA image: sniff the format, refuse oversized
 * images before allocating, decode (JPEG, PNG, first GIF frame), then apply
 * the JPEG's EXIF orientation.
 *
 * Every failure becomes a {@linkcode ClassifierError} with a message safe to
 * show a user; the decoder's own error is kept as `cause` for the log.
 *
 * @module
 */
import exifr from "exifr";
import { ClassifierError } from "../errors.ts";
import type { DecodedImage } from "./decoded_image.ts";
import { hasEndMarker, readDimensions } from "./_header.ts";
import { decodeGifFirstFrame, decodeJpeg, decodePng } from "./_codecs.ts";
import { applyOrientation, isOrientation, type Orientation } from "./orientation.ts";
import { _describeUnsupported, type ImageFormat, sniffImageFormat } from "./sniff.ts";

/**
 * The default pixel limit: 64 megapixels (e.g. 9238x6928). Decoding needs
 * about 8 bytes per pixel at its peak (decoder output plus the RGBA copy).
 */
export const DEFAULT_MAX_PIXELS = 64_000_000;

/** Options for {@linkcode decodeImage}. */
export interface DecodeOptions {
  /**
   * Largest width x height accepted, checked from the header before decoding
   * so a small file cannot claim a huge canvas. Default
   * {@linkcode DEFAULT_MAX_PIXELS}.
   */
  maxPixels?: number;
}

const NAMES: Record<ImageFormat, string> = { jpeg: "JPEG", png: "PNG", gif: "GIF" };

function checkSize(width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels) {
    const mp = (n: number) => `${Math.round(n / 1e5) / 10}`;
    throw new ClassifierError(
      "payload_too_large",
      `Cannot decode image: it is ${width}x${height} (${mp(width * height)} megapixels), ` +
        `over the ${mp(maxPixels)} megapixel limit`,
    );
  }
}

// The EXIF Orientation of a JPEG; 1 when absent or unreadable, since a broken
// EXIF block should not stop an otherwise good photo from being classified.
async function readOrientation(bytes: Uint8Array): Promise<Orientation> {
  try {
    const value = await exifr.orientation(bytes);
    return isOrientation(value) ? value : 1;
  } catch {
    return 1;
  }
}

const DECODERS: Record<ImageFormat, (bytes: Uint8Array) => Promise<DecodedImage>> = {
  jpeg: decodeJpeg,
  png: decodePng,
  gif: decodeGifFirstFrame,
};

/**
 * Decodes a JPEG, PNG or GIF (first frame only) into an upright RGBA image.
 *
 * The format is taken from the magic bytes, never from a name or header. A
 * JPEG's EXIF Orientation (1-8) is applied, so the result is what a viewer
 * shows; missing or corrupt EXIF counts as upright. Alpha is kept in the
 * result but the rest of the image path ignores it (transparent pixels keep
 * whatever colour they store; for GIF that is black).
 *
 * @throws {ClassifierError} `unsupported_media_type` if the bytes are not a
 * JPEG, PNG or GIF; `payload_too_large` if the image is over `maxPixels`;
 * `decode_failed` if the data is truncated or corrupt.
 *
 * @example
 * ```ts
 * import { decodeImage } from "./decode.ts";
 *
 * const image = await decodeImage(await Deno.readFile("tests/fixtures/chelsea.jpg"));
 * image.width; // 448
 * image.data.length; // 448 * 288 * 4
 * ```
 */
export async function decodeImage(
  bytes: Uint8Array,
  options: DecodeOptions = {},
): Promise<DecodedImage> {
  const { maxPixels = DEFAULT_MAX_PIXELS } = options;
  const format = sniffImageFormat(bytes);
  if (format === null) {
    const known = _describeUnsupported(bytes);
    const what = bytes.length === 0
      ? "it is empty"
      : known
      ? `it is ${known}, not a JPEG, PNG or GIF`
      : "it is not a JPEG, PNG or GIF image";
    throw new ClassifierError("unsupported_media_type", `Cannot classify this file: ${what}`);
  }
  const name = NAMES[format];
  const declared = readDimensions(bytes, format);
  if (declared) checkSize(declared.width, declared.height, maxPixels);

  let image: DecodedImage;
  try {
    image = await DECODERS[format](bytes);
  } catch (cause) {
    const reason = declared === null
      ? `the ${name} header is truncated or malformed`
      : !hasEndMarker(bytes, format)
      ? `the ${name} data is truncated`
      : `the ${name} data is corrupt`;
    throw new ClassifierError("decode_failed", `Cannot decode image: ${reason}`, { cause });
  }
  if (!(image.width > 0) || !(image.height > 0)) {
    throw new ClassifierError("decode_failed", `Cannot decode image: the ${name} has no pixels`);
  }
  // The header check can miss (e.g. a JPEG whose size comes after unusual segments).
  checkSize(image.width, image.height, maxPixels);

  if (format !== "jpeg") return image;
  return applyOrientation(image, await readOrientation(bytes));
}
