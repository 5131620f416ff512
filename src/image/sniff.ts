/**
 * Telling image formats apart by their first bytes, never by file names or
 * Content-Type headers, which clients get wrong.
 *
 * @module
 */

/** The image formats the classifier decodes. */
export type ImageFormat = "jpeg" | "png" | "gif" | "webp" | "bmp";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  if (bytes.length < at + prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}

function ascii(text: string): number[] {
  return Array.from(text, (ch) => ch.charCodeAt(0));
}

// BITMAPCOREHEADER, OS/2 1.x, BITMAPINFOHEADER, V2, V3, OS/2 2.x, V4, V5.
const BMP_DIB_SIZES = [12, 16, 40, 52, 56, 64, 108, 124];

/**
 * A BMP: `BM`, then a known DIB header size at 14 (so text that starts with
 * "BM" is not taken for one). Internal: shared with the BMP decoder.
 */
export function _isBmp(bytes: Uint8Array): boolean {
  return startsWith(bytes, ascii("BM")) && bytes.length >= 18 &&
    BMP_DIB_SIZES.includes(bytes[14] | (bytes[15] << 8)) && bytes[16] === 0 && bytes[17] === 0;
}

/** A WebP: `RIFF`, a size, `WEBP`. Internal: shared with the WebP decoder. */
export function _isWebp(bytes: Uint8Array): boolean {
  return startsWith(bytes, ascii("RIFF")) && startsWith(bytes, ascii("WEBP"), 8);
}

/**
 * Returns the format of an encoded image from its magic bytes: JPEG
 * (`FF D8 FF`), PNG (`89 50 4E 47 0D 0A 1A 0A`), GIF (`GIF87a` / `GIF89a`),
 * WebP (`RIFF` size `WEBP`) or BMP (`BM` and a known DIB header size at 14),
 * or `null` for anything else, including empty and too-short input.
 *
 * @example
 * ```ts
 * import { sniffImageFormat } from "./sniff.ts";
 *
 * sniffImageFormat(new Uint8Array([0xff, 0xd8, 0xff, 0xe0])); // "jpeg"
 * sniffImageFormat(new TextEncoder().encode("GIF89a...")); // "gif"
 * sniffImageFormat(new TextEncoder().encode("<svg>")); // null
 * ```
 */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | null {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return "jpeg";
  if (startsWith(bytes, PNG_SIGNATURE)) return "png";
  if (startsWith(bytes, ascii("GIF87a")) || startsWith(bytes, ascii("GIF89a"))) return "gif";
  if (_isWebp(bytes)) return "webp";
  if (_isBmp(bytes)) return "bmp";
  return null;
}

/**
 * Names a few common formats the classifier does not take, so the error can
 * say what was sent. Internal: used only for error messages.
 */
export function _describeUnsupported(bytes: Uint8Array): string | null {
  if (startsWith(bytes, ascii("ftyp"), 4)) {
    const brand = String.fromCharCode(...bytes.subarray(8, 12));
    if (brand === "avif" || brand === "avis") return "an AVIF image";
    if (["heic", "heix", "hevc", "heim", "heis", "mif1", "msf1"].includes(brand)) {
      return "a HEIF/HEIC image";
    }
  }
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) {
    return "a TIFF image";
  }
  if (startsWith(bytes, ascii("%PDF"))) return "a PDF document";
  return null;
}
