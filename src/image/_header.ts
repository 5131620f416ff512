/**
 * Reading what an encoded image says about itself before decoding it: its
 * size (to refuse decompression bombs before allocating) and whether it ends
 * where its format says it should (to tell "truncated" from "corrupt").
 *
 * @module
 */
import type { ImageFormat } from "./sniff.ts";
import { readBmpHeader } from "./bmp.ts";
import { readWebpHeader } from "./webp.ts";

/** Width and height in pixels, as the header declares them. */
export interface Dimensions {
  width: number;
  height: number;
}

const u16be = (b: Uint8Array, at: number) => (b[at] << 8) | b[at + 1];
const u16le = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8);
const u32be = (b: Uint8Array, at: number) =>
  ((b[at] << 24) >>> 0) + ((b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);

// Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
function isSof(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 &&
    marker !== 0xcc;
}

function jpegDimensions(b: Uint8Array): Dimensions | null {
  let i = 2;
  while (i + 1 < b.length) {
    if (b[i] !== 0xff) return null;
    while (i < b.length && b[i] === 0xff) i++; // fill bytes
    const marker = b[i++];
    if (marker === undefined || marker === 0xd9 || marker === 0xda) return null; // EOI, SOS
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue; // no length
    if (i + 2 > b.length) return null;
    if (isSof(marker)) {
      if (i + 7 > b.length) return null;
      return { height: u16be(b, i + 3), width: u16be(b, i + 5) };
    }
    i += u16be(b, i);
  }
  return null;
}

/** How the decoded samples are stored, as the header declares it. */
export interface SampleLayout {
  /** Samples per pixel as stored (a palette index counts as one). */
  channels: number;
  /** Bytes per sample: 2 for 16-bit PNGs and 12-bit JPEGs, else 1. */
  bytesPerSample: number;
}

// PNG colour types -> samples per pixel: grey, RGB, palette, grey + alpha, RGBA.
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

// The first SOF's precision and component count (b at the segment's length field).
function jpegLayout(b: Uint8Array): SampleLayout | null {
  for (let i = 2; i + 1 < b.length;) {
    if (b[i] !== 0xff) return null;
    while (i < b.length && b[i] === 0xff) i++;
    const marker = b[i++];
    if (marker === undefined || marker === 0xd9 || marker === 0xda) return null;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    if (i + 8 > b.length) return null;
    if (isSof(marker)) return { channels: b[i + 7], bytesPerSample: b[i + 2] > 8 ? 2 : 1 };
    i += u16be(b, i);
  }
  return null;
}

/**
 * The stored sample layout a header declares, or `null` when it is too short to say. WebP
 * and BMP count as four 8-bit samples (their decoders' output); a GIF as one (palette).
 */
export function readSampleLayout(bytes: Uint8Array, format: ImageFormat): SampleLayout | null {
  switch (format) {
    case "png": { // IHDR: width, height, bit depth (24), colour type (25)
      const channels = PNG_CHANNELS[bytes[25]];
      if (bytes.length < 29 || channels === undefined) return null;
      return { channels, bytesPerSample: bytes[24] === 16 ? 2 : 1 };
    }
    case "jpeg":
      return jpegLayout(bytes);
    case "gif":
      return { channels: 1, bytesPerSample: 1 };
    case "webp":
    case "bmp":
      return { channels: 4, bytesPerSample: 1 };
  }
}

/**
 * The bytes of a PNG's IDAT chunks (its zlib stream), walking the chunks from the
 * signature; chunks cut short count as far as the file goes.
 */
export function pngDataBytes(b: Uint8Array): number {
  let total = 0;
  for (let i = 8; i + 8 <= b.length;) {
    const length = u32be(b, i);
    if (b[i + 4] === 0x49 && b[i + 5] === 0x44 && b[i + 6] === 0x41 && b[i + 7] === 0x54) {
      total += Math.min(length, b.length - i - 8);
    }
    i += 12 + length;
  }
  return total;
}

/**
 * The number of scans (SOS markers) in a JPEG, counting no further than `limit + 1`: the
 * segments are walked and each scan's entropy-coded data skipped up to the next marker
 * (a 0xFF byte there is always stuffed as FF 00, so every FF xx with xx not 00 or a
 * restart marker ends it). One pass over the bytes, before any decoder runs.
 */
export function countJpegScans(b: Uint8Array, limit: number): number {
  let scans = 0;
  for (let i = 2; i + 3 < b.length && scans <= limit;) {
    if (b[i] !== 0xff) return scans;
    while (i < b.length && b[i] === 0xff) i++;
    const marker = b[i++];
    if (marker === undefined || marker === 0xd9) return scans;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    i += u16be(b, i);
    if (marker !== 0xda) continue;
    scans++;
    while (i + 1 < b.length) {
      const next = b[i + 1];
      if (b[i] === 0xff && next !== 0 && next !== 0xff && (next < 0xd0 || next > 0xd7)) break;
      i++;
    }
  }
  return scans;
}

/** "Exif\0\0": the header of an APP1 segment that holds EXIF data. */
const EXIF_HEADER = [0x45, 0x78, 0x69, 0x66, 0, 0];

/**
 * Whether the bytes hold an EXIF header ("Exif\0\0") anywhere: without one a JPEG has no
 * EXIF Orientation, and the EXIF reader need not be loaded. A match inside pixel data only
 * costs that reader's visit.
 */
export function hasExifHeader(b: Uint8Array): boolean {
  for (let i = b.indexOf(0x45); i >= 0 && i + 6 <= b.length; i = b.indexOf(0x45, i + 1)) {
    if (EXIF_HEADER.every((v, k) => b[i + k] === v)) return true;
  }
  return false;
}

/**
 * The size an image header declares, or `null` when the header is too short
 * or malformed to say (the decoder then reports the problem).
 */
export function readDimensions(bytes: Uint8Array, format: ImageFormat): Dimensions | null {
  switch (format) {
    case "png": // signature (8), IHDR length and type (8), width, height
      return bytes.length < 24 ? null : { width: u32be(bytes, 16), height: u32be(bytes, 20) };
    case "gif": // "GIF89a", logical screen width and height
      return bytes.length < 10 ? null : { width: u16le(bytes, 6), height: u16le(bytes, 8) };
    case "jpeg":
      return jpegDimensions(bytes);
    case "webp":
      return readWebpHeader(bytes);
    case "bmp":
      try {
        return readBmpHeader(bytes);
      } catch {
        return null;
      }
  }
}

/**
 * Whether the bytes end with the format's end marker (JPEG EOI `FF D9`, PNG
 * `IEND` chunk, GIF trailer `3B`), allowing trailing zero padding. A file
 * that fails to decode and lacks it was most likely cut short.
 */
export function hasEndMarker(bytes: Uint8Array, format: ImageFormat): boolean {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  switch (format) {
    case "jpeg":
      return end >= 2 && bytes[end - 2] === 0xff && bytes[end - 1] === 0xd9;
    case "png": // "IEND" then its 4-byte CRC, which may end in zeros
      return bytes.length >= 8 &&
        String.fromCharCode(...bytes.subarray(bytes.length - 8, bytes.length - 4)) === "IEND";
    case "gif":
      return end >= 1 && bytes[end - 1] === 0x3b;
    case "webp": // the RIFF size covers the whole file
      return bytes.length >= 8 &&
        8 + (bytes[4] | (bytes[5] << 8) | (bytes[6] << 16)) + bytes[7] * 2 ** 24 <= bytes.length;
    case "bmp": // no end marker: the BMP decoder names what is missing itself
      return true;
  }
}
