/**
 * Request bytes to an upright RGBA image: sniff the format, refuse oversized
 * images before allocating, decode (JPEG, PNG, first GIF frame, WebP (first
 * frame of an animation), BMP), then apply the JPEG's EXIF orientation.
 *
 * JPEGs go through the fast decoder (`jpeg_fast.ts`), which can decode at 1/2,
 * 1/4 or 1/8 scale when the caller says what the image is for (`fitFor`); a
 * JPEG it does not support falls back to the full decoder. PNGs go through the
 * streaming decoder (`png_stream.ts`) when `fitFor` lets a 1/2, 1/4 or 1/8 box mean
 * stand for them (it then holds two scanlines and the reduced output, never the whole
 * image), and at full size from {@linkcode PNG_STREAM_MIN_PIXELS}; smaller PNGs stay on
 * imagescript's decoder, whose output the streaming one equals bit for bit.
 *
 * Every failure becomes a {@linkcode ClassifierError} with a message safe to
 * show a user; the decoder's own error is kept as `cause` for the log.
 *
 * @module
 */
import { ClassifierError } from "../errors.ts";
import type { DecodedImage } from "./decoded_image.ts";
import {
  countJpegScans,
  hasEndMarker,
  hasExifHeader,
  pngDataBytes,
  readDimensions,
  readSampleLayout,
  type SampleLayout,
} from "./_header.ts";
import { gifFirstFrameSize } from "./_gif_header.ts";
import { decodeBmp, readBmpHeader } from "./bmp.ts";
import { decodeWebp } from "./webp.ts";
import {
  decodeJpegFast,
  JPEG_MAX_SCANS,
  JPEG_VISITS_PER_BLOCK,
  JpegFastError,
  type JpegScale,
  largestJpegScale,
} from "./jpeg_fast.ts";
import { decodePngStream, type PngScale } from "./png_stream.ts";
import type { PreprocessSpec } from "./preprocess_spec.ts";
import { applyOrientation, isOrientation, type Orientation } from "./orientation.ts";
import { _describeUnsupported, type ImageFormat, sniffImageFormat } from "./sniff.ts";

/**
 * The default pixel limit: 40 megapixels (e.g. 7746x5164, above any phone
 * camera). Decoding needs about 8 bytes per pixel at its peak (decoder output
 * plus the RGBA copy), so 320 MB for an image at the limit.
 */
export const DEFAULT_MAX_PIXELS = 40_000_000;

/**
 * Decoded bytes allowed per pixel of `maxPixels` when `maxBytes` is not given: 4, an 8-bit
 * RGBA image at the pixel limit (160 MB at the default). Every 8-bit image within the pixel
 * limit fits; a 16-bit RGBA PNG (8 bytes a pixel) gets half as many pixels.
 */
export const DEFAULT_BYTES_PER_PIXEL = 4;

/** Options for {@linkcode decodeImage}. */
export interface DecodeOptions {
  /**
   * Largest width x height accepted, checked from the header before decoding
   * so a small file cannot claim a huge canvas. Default
   * {@linkcode DEFAULT_MAX_PIXELS}.
   */
  maxPixels?: number;
  /**
   * Largest decoded size in bytes, checked from the header before any pixel is
   * decoded: width x height x channels x bytes per sample as stored (16-bit samples
   * and alpha count), and never less than the 4-byte RGBA output. Default
   * {@linkcode DEFAULT_BYTES_PER_PIXEL} x `maxPixels`, so `--max-pixels` sets it too
   * (160 MB at the 40 MP default; a 6300x6300 16-bit RGBA PNG needs 318 MB).
   */
  maxBytes?: number;
  /**
   * The preprocessing the image is decoded for. A JPEG is then decoded at the
   * smallest DCT scale (1/8, 1/4 or 1/2) that keeps it
   * {@linkcode MIN_REDUCTION_MARGIN} times the resize target (shorter side vs
   * `resize.size`, or both sides vs the input size for `direct`), and a PNG at
   * the smallest box-mean scale chosen the same way; the result carries a
   * `reduction` so `preprocess` resizes it as if from the full-size picture.
   * Without it JPEGs and PNGs decode at full size.
   */
  fitFor?: PreprocessSpec;
  /**
   * `"fast"` (default): JPEGs through the fast decoder, falling back to the full
   * one for what it does not support, and reduced PNGs through the streaming one.
   * `"full"`: the full decoders only (the reference the fast path is tested against).
   */
  decoder?: "fast" | "full";
  /** Checked between steps of the PNG streaming decoder: once aborted, it stops with the reason. */
  signal?: AbortSignal;
}

const NAMES: Record<ImageFormat, string> = {
  jpeg: "JPEG",
  png: "PNG",
  gif: "GIF",
  webp: "WebP",
  bmp: "BMP",
};

// Over the limit is 422 (the request is well-formed, this image is refused), not 413.
function checkSize(width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels) {
    const mp = (n: number) => `${Math.round(n / 1e5) / 10}`;
    throw new ClassifierError(
      "decode_failed",
      `Cannot decode image: it is ${width}x${height} (${mp(width * height)} megapixels), ` +
        `over the ${mp(maxPixels)} megapixel limit`,
    );
  }
}

const mb = (n: number) => n >= 1e6 ? `${Math.round(n / 1e5) / 10} MB` : `${n} bytes`;

// The memory budget: the samples as stored, or the RGBA output if that is larger.
function checkBytes(
  width: number,
  height: number,
  layout: SampleLayout,
  maxBytes: number,
): void {
  const perPixel = Math.max(layout.channels * layout.bytesPerSample, 4);
  const bytes = width * height * perPixel;
  if (bytes > maxBytes) {
    const bits = layout.bytesPerSample * 8;
    const what = `${layout.channels} channel${layout.channels === 1 ? "" : "s"} of ${bits} bits`;
    throw new ClassifierError(
      "decode_failed",
      `Cannot decode image: it is ${width}x${height} with ${what} (${mb(bytes)} decoded), ` +
        `over the ${mb(maxBytes)} memory limit`,
    );
  }
}

/**
 * Most raw bytes one byte of zlib data can inflate to: deflate's longest match (258
 * bytes) costs at least two bits, one for its length code and one for its distance.
 */
const MAX_DEFLATE_RATIO = 1032;

// A PNG's IDAT chunks must hold at least its scanlines / MAX_DEFLATE_RATIO bytes, so a
// header that claims more is lying about its size and never reaches the decoder. The bit
// depth (IHDR byte 24: 1, 2, 4, 8 or 16) sizes the rows.
function checkPngData(bytes: Uint8Array, width: number, height: number, layout: SampleLayout) {
  const raw = height * Math.ceil((width * layout.channels * bytes[24]) / 8);
  const data = pngDataBytes(bytes);
  if (data * MAX_DEFLATE_RATIO < raw) {
    throw new ClassifierError(
      "decode_failed",
      `Cannot decode image: the PNG data is truncated (${data} bytes of image data cannot ` +
        `hold ${width}x${height} pixels)`,
    );
  }
}

// Every JPEG decoder (the full one included) walks each scan over the image: more than
// JPEG_MAX_SCANS scans is refused from the markers, before any of them runs.
function checkJpegScans(bytes: Uint8Array): void {
  if (countJpegScans(bytes, JPEG_MAX_SCANS) > JPEG_MAX_SCANS) {
    throw new ClassifierError("decode_failed", overScans());
  }
}

function overScans(): string {
  return `Cannot decode image: the JPEG has more than ${JPEG_MAX_SCANS} scans ` +
    `(a progressive JPEG has about 10); re-encode it`;
}

// The fast decoder's work limits, as messages that say what was over.
function overBudget(reason: "too_many_scans" | "over_budget"): string {
  if (reason === "too_many_scans") return overScans();
  return `Cannot decode image: the JPEG's scans would decode each 8x8 block more than ` +
    `${JPEG_VISITS_PER_BLOCK} times (a progressive JPEG needs about 6); re-encode it`;
}

// A JPEG needs at least one bit per 8x8 block of its largest component (the Huffman code of
// each block's DC difference), so fewer bytes cannot hold the declared size: the decoder would
// pad the missing blocks and spend seconds on a canvas the file does not contain.
function checkJpegData(bytes: Uint8Array, width: number, height: number): void {
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  if (bytes.length < blocks / 8) {
    throw new ClassifierError(
      "decode_failed",
      `Cannot decode image: the JPEG data is truncated (${bytes.length} bytes cannot hold ` +
        `${width}x${height} pixels)`,
    );
  }
}

// The EXIF Orientation of a JPEG; 1 when absent or unreadable, since a broken
// EXIF block should not stop an otherwise good photo from being classified. exifr (50 ms
// to load) is imported only for a file that has an EXIF header at all.
async function readOrientation(bytes: Uint8Array): Promise<Orientation> {
  if (!hasExifHeader(bytes)) return 1;
  try {
    const { default: exifr } = await import("exifr");
    const value = await exifr.orientation(bytes);
    return isOrientation(value) ? value : 1;
  } catch {
    return 1;
  }
}

/**
 * How much larger than the resize target a reduced JPEG must stay. Measured on the
 * fixtures (tests/image/jpeg_fast_test.ts): when the reduced image is only just as
 * large as the target, the box means it is made of are visibly sharper than the
 * full-size triangle filter (mean |diff| up to 3.6/255 on the astronaut photo at
 * 1/8); from 1.4 times the target the mean stays under 1.8/255.
 */
export const MIN_REDUCTION_MARGIN = 1.4;

/**
 * The DCT scale for a `width` x `height` JPEG (as stored) that will be turned by
 * `orientation` and preprocessed by `spec`: the largest reduction whose decoded
 * size is still {@linkcode MIN_REDUCTION_MARGIN} times the resize target.
 */
export function jpegScaleFor(
  width: number,
  height: number,
  orientation: Orientation,
  spec: PreprocessSpec,
): JpegScale {
  const { resize } = spec;
  const m = MIN_REDUCTION_MARGIN;
  if (resize.mode === "shorter_side") {
    return largestJpegScale(width, height, (w, h) => Math.min(w, h) >= m * resize.size);
  }
  const turned = orientation >= 5; // 5-8 swap width and height
  return largestJpegScale(width, height, (w, h) => {
    const [uw, uh] = turned ? [h, w] : [w, h];
    return uw >= m * spec.width && uh >= m * spec.height;
  });
}

/**
 * PNGs of this many pixels or more are decoded by the streaming decoder even at full size:
 * from about half a megapixel it is as fast as imagescript's or faster, and it never holds
 * the inflated rows beside the output; below, its set-up (a DecompressionStream and a module
 * instance, about 1.5 ms) costs more than it saves (bench/png_stream_bench.ts, docs/decode.md).
 */
export const PNG_STREAM_MIN_PIXELS = 1_000_000;

/**
 * The box-mean scale for a `width` x `height` PNG preprocessed by `spec`: chosen as
 * {@linkcode jpegScaleFor} chooses a JPEG's (PNGs carry no orientation).
 */
export function pngScaleFor(width: number, height: number, spec: PreprocessSpec): PngScale {
  return jpegScaleFor(width, height, 1, spec);
}

function failureReason(bytes: Uint8Array, format: ImageFormat): string {
  const name = NAMES[format];
  return hasEndMarker(bytes, format)
    ? `the ${name} data is corrupt`
    : `the ${name} data is truncated`;
}

// The fast JPEG path: null when the fast decoder does not handle this file (the full
// decoder then runs); a ClassifierError for a stream it found broken.
async function decodeJpegFastOrNull(
  bytes: Uint8Array,
  orientation: Orientation,
  fitFor: PreprocessSpec | undefined,
  declared: { width: number; height: number },
): Promise<DecodedImage | null> {
  const scale = fitFor ? jpegScaleFor(declared.width, declared.height, orientation, fitFor) : 1;
  try {
    return await decodeJpegFast(bytes, scale);
  } catch (cause) {
    // Over a work limit: refused, never handed to the full decoder (it has no limits).
    if (
      cause instanceof JpegFastError &&
      (cause.reason === "too_many_scans" || cause.reason === "over_budget")
    ) {
      throw new ClassifierError("decode_failed", overBudget(cause.reason), { cause });
    }
    if (
      cause instanceof JpegFastError && (cause.reason === "truncated" || cause.reason === "corrupt")
    ) {
      const message = `Cannot decode image: ${failureReason(bytes, "jpeg")}`;
      throw new ClassifierError("decode_failed", message, { cause });
    }
    // Unsupported, out of memory or a trap: the full decoder gets its chance.
    return null;
  }
}

// The full decoders are imported on first use: most servers only ever see JPEGs, which the
// fast decoder takes, and loading imagescript's and libwebp's glue costs ~90 ms at start-up.
const codecs = () => import("./_codecs.ts");
const DECODERS: Record<ImageFormat, (bytes: Uint8Array) => Promise<DecodedImage>> = {
  jpeg: async (bytes) => (await codecs()).decodeJpeg(bytes),
  png: async (bytes) => (await codecs()).decodePng(bytes),
  gif: async (bytes) => (await codecs()).decodeGifFirstFrame(bytes),
  webp: decodeWebp,
  bmp: (bytes) => Promise.resolve().then(() => decodeBmp(bytes)),
};

/**
 * Decodes a JPEG, PNG, GIF (first frame), WebP (first frame) or BMP into an
 * upright RGBA image.
 *
 * The format is taken from the magic bytes, never from a name or header. A
 * JPEG's EXIF Orientation (1-8) is applied, so the result is what a viewer
 * shows; missing or corrupt EXIF counts as upright. Alpha is kept in the
 * result but the rest of the image path ignores it (transparent pixels keep
 * whatever colour they store; for GIF that is black).
 *
 * @throws {ClassifierError} `unsupported_media_type` if the bytes are not one
 * of those formats; `decode_failed` if the image (or a GIF's first frame) is
 * over `maxPixels` or `maxBytes` by its header, if the header cannot be read,
 * if a JPEG is over the decoder's work limits (scans, block visits), or if the
 * data is truncated or corrupt.
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
  const { maxPixels = DEFAULT_MAX_PIXELS, fitFor, decoder = "fast", signal } = options;
  const { maxBytes = DEFAULT_BYTES_PER_PIXEL * maxPixels } = options;
  const format = sniffImageFormat(bytes);
  if (format === null) {
    const known = _describeUnsupported(bytes);
    const what = bytes.length === 0
      ? "it is empty"
      : known
      ? `it is ${known}, not a JPEG, PNG, GIF, WebP or BMP`
      : "it is not a JPEG, PNG, GIF, WebP or BMP image";
    throw new ClassifierError("unsupported_media_type", `Cannot classify this file: ${what}`);
  }
  const name = NAMES[format];
  const declared = readDimensions(bytes, format);
  // No size, no decode: a decoder must never allocate for a size nobody checked.
  if (!declared) {
    if (format === "bmp") readBmpHeader(bytes); // throws its more precise reason
    throw new ClassifierError(
      "decode_failed",
      `Cannot decode image: the ${name} header is truncated or malformed`,
    );
  }
  checkSize(declared.width, declared.height, maxPixels);
  const layout = readSampleLayout(bytes, format);
  if (!layout) {
    throw new ClassifierError(
      "decode_failed",
      `Cannot decode image: the ${name} header is truncated or malformed`,
    );
  }
  checkBytes(declared.width, declared.height, layout, maxBytes);
  if (format === "jpeg") {
    checkJpegData(bytes, declared.width, declared.height);
    checkJpegScans(bytes);
  }
  if (format === "png") checkPngData(bytes, declared.width, declared.height, layout);
  const frame = format === "gif" ? gifFirstFrameSize(bytes) : null;
  if (frame) checkSize(frame.width, frame.height, maxPixels);
  if (frame) checkBytes(frame.width, frame.height, layout, maxBytes);

  const orientation = format === "jpeg" ? await readOrientation(bytes) : 1;
  let image: DecodedImage | null = null;
  if (format === "jpeg" && decoder === "fast") {
    image = await decodeJpegFastOrNull(bytes, orientation, fitFor, declared);
  }
  const pngScale = format === "png" && decoder === "fast" && fitFor
    ? pngScaleFor(declared.width, declared.height, fitFor)
    : 1;
  const streamPng = format === "png" && decoder === "fast" &&
    (pngScale > 1 || declared.width * declared.height >= PNG_STREAM_MIN_PIXELS);
  try {
    if (streamPng) image = await decodePngStream(bytes, { scale: pngScale, signal });
    image ??= await DECODERS[format](bytes);
  } catch (cause) {
    if (cause instanceof ClassifierError || cause === signal?.reason) throw cause;
    const reason = failureReason(bytes, format);
    throw new ClassifierError("decode_failed", `Cannot decode image: ${reason}`, { cause });
  }
  if (!(image.width > 0) || !(image.height > 0)) {
    throw new ClassifierError("decode_failed", `Cannot decode image: the ${name} has no pixels`);
  }
  // The header check can miss (e.g. a JPEG whose size comes after unusual segments).
  checkSize(image.width, image.height, maxPixels);

  // Upright images are returned as they are: the fast decoder's pixels stay in its instance
  // until something reads them (`jpeg_fast.ts`), which a length check here would do.
  return format === "jpeg" && orientation !== 1 ? applyOrientation(image, orientation) : image;
}
