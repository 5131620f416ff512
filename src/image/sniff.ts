/**
 * Telling image formats apart by their first bytes, never by file names or
 * Content-Type headers, which clients get wrong.
 *
 * @module
 */

/** The image formats the classifier decodes. */
export type ImageFormat = "jpeg" | "png" | "gif";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  if (bytes.length < at + prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}

function ascii(text: string): number[] {
  return Array.from(text, (ch) => ch.charCodeAt(0));
}

/**
 * Returns the format of an encoded image from its magic bytes: JPEG
 * (`FF D8 FF`), PNG (`89 50 4E 47 0D 0A 1A 0A`) or GIF (`GIF87a` / `GIF89a`),
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
  return null;
}

/**
 * Names a few common formats the classifier does not take, so the error can
 * say what was sent. Internal: used only for error messages.
 */
export function _describeUnsupported(bytes: Uint8Array): string | null {
  if (startsWith(bytes, ascii("RIFF")) && startsWith(bytes, ascii("WEBP"), 8)) {
    return "a WebP image";
  }
  if (startsWith(bytes, ascii("ftyp"), 4)) {
    const brand = String.fromCharCode(...bytes.subarray(8, 12));
    if (brand === "avif" || brand === "avis") return "an AVIF image";
    if (["heic", "heix", "hevc", "heim", "heis", "mif1", "msf1"].includes(brand)) {
      return "a HEIF/HEIC image";
    }
  }
  if (startsWith(bytes, ascii("BM"))) return "a BMP image";
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) {
    return "a TIFF image";
  }
  if (startsWith(bytes, ascii("%PDF"))) return "a PDF document";
  return null;
}
