/**
 * A small BMP decoder in plain TypeScript: 1/4/8-bit palettes (uncompressed,
 * RLE8, RLE4), 16 and 32-bit (BI_RGB or BI_BITFIELDS masks, alpha when a mask
 * says so) and 24-bit, rows bottom-up or top-down, every DIB header from
 * BITMAPCOREHEADER (12 bytes) to BITMAPV5HEADER (124). Embedded JPEG/PNG
 * (compression 4 and 5) and OS/2 Huffman are refused.
 *
 * Every check happens before the pixel buffer is allocated; every failure is
 * a {@linkcode ClassifierError} `decode_failed` saying what is wrong.
 *
 * @module
 */
import { ClassifierError } from "../errors.ts";
import type { DecodedImage } from "./decoded_image.ts";
import { _isBmp } from "./sniff.ts";

/** What a BMP's headers declare. */
export interface BmpHeader {
  width: number;
  /** Always positive; `topDown` says the row order. */
  height: number;
  topDown: boolean;
  bitsPerPixel: number;
  /** 0 BI_RGB, 1 RLE8, 2 RLE4, 3 BI_BITFIELDS, 6 BI_ALPHABITFIELDS. */
  compression: number;
  /** Where the pixel array starts. */
  dataOffset: number;
  /** Palette as RGBA, for 1/4/8 bits per pixel. */
  palette: Uint8Array;
  /** Channel masks (R, G, B, A) for 16 and 32 bits per pixel; A is 0 when there is no alpha. */
  masks: [number, number, number, number];
}

const fail = (reason: string) =>
  new ClassifierError("decode_failed", `Cannot decode image: the BMP ${reason}`);

const u16 = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8);
const u32 = (b: Uint8Array, at: number) =>
  (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16)) + b[at + 3] * 2 ** 24;
const i32 = (b: Uint8Array, at: number) =>
  b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24);

const COMPRESSION_NAMES: Record<number, string> = { 4: "JPEG", 5: "PNG" };

/**
 * Reads and checks a BMP's headers, palette and masks (not the pixels).
 *
 * @throws {ClassifierError} `decode_failed` naming what is truncated, malformed
 * or unsupported.
 *
 * @example
 * ```ts
 * import { readBmpHeader } from "./bmp.ts";
 *
 * const header = readBmpHeader(await Deno.readFile("tests/fixtures/fmt_bmp24.bmp"));
 * [header.width, header.height, header.bitsPerPixel]; // [121, 81, 24]
 * ```
 */
export function readBmpHeader(bytes: Uint8Array): BmpHeader {
  if (!_isBmp(bytes)) throw fail("header is truncated or malformed");
  const dib = u32(bytes, 14);
  if (bytes.length < 14 + dib) throw fail("header is truncated");
  const core = dib === 12;
  const width = core ? u16(bytes, 18) : i32(bytes, 18);
  const rawHeight = core ? u16(bytes, 20) : i32(bytes, 22);
  const bitsPerPixel = core ? u16(bytes, 24) : u16(bytes, 28);
  const compression = core || dib === 16 ? 0 : u32(bytes, 30);
  const colorsUsed = dib >= 40 ? u32(bytes, 46) : 0;
  if (width <= 0 || rawHeight === 0 || rawHeight === -(2 ** 31)) {
    throw fail(`header declares an invalid size (${width}x${rawHeight})`);
  }
  if (![1, 4, 8, 16, 24, 32].includes(bitsPerPixel)) {
    throw fail(`header declares ${bitsPerPixel} bits per pixel`);
  }
  if (COMPRESSION_NAMES[compression]) {
    throw fail(`holds an embedded ${COMPRESSION_NAMES[compression]}, which is not supported`);
  }
  const rle = compression === 1 || compression === 2;
  const bitfields = compression === 3 || compression === 6;
  if (
    (compression > 3 && compression !== 6) ||
    (compression === 1 && bitsPerPixel !== 8) || (compression === 2 && bitsPerPixel !== 4) ||
    (bitfields && bitsPerPixel !== 16 && bitsPerPixel !== 32)
  ) {
    throw fail(`header declares compression ${compression} for ${bitsPerPixel} bits per pixel`);
  }
  const topDown = rawHeight < 0;
  if (topDown && rle) throw fail("header declares a top-down RLE image, which is invalid");
  const height = Math.abs(rawHeight);

  // Masks: inside V2+ headers, else right after a 40-byte header when BI_BITFIELDS.
  let masks: [number, number, number, number];
  let end = 14 + dib;
  if (bitfields) {
    const at = dib >= 52 ? 54 : end;
    const count = dib >= 56 || compression === 6 ? 4 : 3;
    if (dib < 52) end += count * 4;
    if (bytes.length < at + count * 4) throw fail("header is truncated");
    masks = [
      u32(bytes, at),
      u32(bytes, at + 4),
      u32(bytes, at + 8),
      count === 4 ? u32(bytes, at + 12) : 0,
    ];
    if (masks[0] === 0 && masks[1] === 0 && masks[2] === 0) {
      throw fail("header has empty colour masks");
    }
  } else if (bitsPerPixel === 16) {
    masks = [0x7c00, 0x03e0, 0x001f, 0];
  } else {
    masks = [0xff0000, 0xff00, 0xff, 0]; // 24 and 32-bit BI_RGB: the fourth byte is padding
  }

  let palette = new Uint8Array(0);
  if (bitsPerPixel <= 8) {
    const entry = core ? 3 : 4;
    const max = 2 ** bitsPerPixel;
    const count = colorsUsed === 0 || colorsUsed > max ? max : colorsUsed;
    // Some writers leave less room than `count` entries before the pixels: take what fits.
    const room = Math.floor(Math.min(bytes.length, u32(bytes, 10)) - end) / entry;
    const n = Math.max(0, Math.min(count, Math.floor(room)));
    if (n === 0) throw fail("palette is missing");
    palette = new Uint8Array(max * 4); // indices past the palette read as opaque black
    for (let i = 0; i < max; i++) palette[i * 4 + 3] = 255;
    for (let i = 0; i < n; i++) {
      const at = end + i * entry;
      palette.set([bytes[at + 2], bytes[at + 1], bytes[at]], i * 4);
    }
  }
  const dataOffset = u32(bytes, 10);
  if (dataOffset < end || dataOffset > bytes.length) throw fail("data is truncated");
  return { width, height, topDown, bitsPerPixel, compression, dataOffset, palette, masks };
}

/** Bytes of one stored row: rows are padded to 4 bytes. */
export function bmpStride(header: Pick<BmpHeader, "width" | "bitsPerPixel">): number {
  return Math.floor((header.bitsPerPixel * header.width + 31) / 32) * 4;
}

/** One channel of a bit mask: where it starts, how wide it is, and its 0..255 lookup. */
interface Channel {
  shift: number;
  bits: number;
  /** For masks up to 8 bits: the value replicated to 8 bits, as browsers and ImageMagick do. */
  table?: Uint8Array;
}

function channel(mask: number): Channel {
  if (mask === 0) return { shift: 0, bits: 0 };
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  let bits = 0;
  while (shift + bits < 32 && mask >>> (shift + bits) !== 0) bits++;
  if (bits > 8) return { shift, bits };
  const table = new Uint8Array(1 << bits);
  for (let v = 0; v < table.length; v++) {
    let r = 0; // v's bits repeated from the top: 5-bit 10011 -> 10011100
    for (let s = 8 - bits; s > -bits; s -= bits) r |= s >= 0 ? v << s : v >> -s;
    table[v] = r;
  }
  return { shift, bits, table };
}

function channelValue(px: number, c: Channel): number {
  const v = (px >>> c.shift) & (c.bits >= 32 ? 0xffffffff : 2 ** c.bits - 1);
  return c.table ? c.table[v] : (v >>> 0) >>> (c.bits - 8);
}

function decodeTrueColor(bytes: Uint8Array, h: BmpHeader, out: Uint8Array): void {
  const { width, height, bitsPerPixel: bpp } = h;
  const stride = bmpStride(h);
  const [r, g, b, a] = h.masks.map(channel);
  const bytesPer = bpp / 8;
  for (let y = 0; y < height; y++) {
    const src = h.dataOffset + (h.topDown ? y : height - 1 - y) * stride;
    let o = y * width * 4;
    if (bpp === 24 || (bpp === 32 && h.compression === 0)) {
      for (let x = 0, s = src; x < width; x++, s += bytesPer, o += 4) {
        out[o] = bytes[s + 2];
        out[o + 1] = bytes[s + 1];
        out[o + 2] = bytes[s];
        out[o + 3] = 255;
      }
      continue;
    }
    for (let x = 0, s = src; x < width; x++, s += bytesPer, o += 4) {
      const px = bpp === 16 ? u16(bytes, s) : u32(bytes, s);
      out[o] = r.bits ? channelValue(px, r) : 0;
      out[o + 1] = g.bits ? channelValue(px, g) : 0;
      out[o + 2] = b.bits ? channelValue(px, b) : 0;
      out[o + 3] = a.bits ? channelValue(px, a) : 255;
    }
  }
}

function decodeIndexed(bytes: Uint8Array, h: BmpHeader, out: Uint8Array): void {
  const { width, height, bitsPerPixel: bpp, palette } = h;
  const stride = bmpStride(h);
  const perByte = 8 / bpp;
  const mask = (1 << bpp) - 1;
  for (let y = 0; y < height; y++) {
    const src = h.dataOffset + (h.topDown ? y : height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const byte = bytes[src + Math.floor(x / perByte)];
      const index = (byte >> (8 - bpp * (x % perByte + 1))) & mask;
      out.set(palette.subarray(index * 4, index * 4 + 4), (y * width + x) * 4);
    }
  }
}

// RLE8/RLE4: pairs (count, index) or escapes 0 0 (end of line), 0 1 (end of bitmap),
// 0 2 dx dy (move), 0 n (n literal indices, padded to 2 bytes). Pixels never written
// stay transparent black, as browsers show them.
function decodeRle(bytes: Uint8Array, h: BmpHeader, out: Uint8Array): void {
  const { width, height, palette } = h;
  const four = h.compression === 2;
  let x = 0, y = 0, i = h.dataOffset;
  const put = (index: number) => {
    if (x < width && y < height) {
      out.set(palette.subarray(index * 4, index * 4 + 4), ((height - 1 - y) * width + x) * 4);
    }
    x++;
  };
  while (y < height) {
    if (i + 1 >= bytes.length) throw fail("data is truncated");
    const count = bytes[i], value = bytes[i + 1];
    i += 2;
    if (count > 0) {
      for (let k = 0; k < count; k++) put(four ? (k % 2 === 0 ? value >> 4 : value & 15) : value);
    } else if (value === 0) {
      x = 0;
      y++;
    } else if (value === 1) {
      return;
    } else if (value === 2) {
      if (i + 1 >= bytes.length) throw fail("data is truncated");
      x += bytes[i];
      y += bytes[i + 1];
      i += 2;
    } else {
      const size = four ? Math.ceil(value / 2) : value;
      if (i + size > bytes.length) throw fail("data is truncated");
      for (let k = 0; k < value; k++) {
        put(
          four ? (k % 2 === 0 ? bytes[i + (k >> 1)] >> 4 : bytes[i + (k >> 1)] & 15) : bytes[i + k],
        );
      }
      i += size + (size % 2);
    }
  }
}

/**
 * Decodes a BMP into RGBA. Call it only once the size has passed the pixel
 * limit ({@linkcode readBmpHeader} gives it).
 *
 * @throws {ClassifierError} `decode_failed` when the file is truncated,
 * malformed or uses an unsupported compression.
 *
 * @example
 * ```ts
 * import { decodeBmp } from "./bmp.ts";
 *
 * const image = decodeBmp(await Deno.readFile("tests/fixtures/fmt_bmp24.bmp"));
 * image.data.length; // 121 * 81 * 4
 * ```
 */
export function decodeBmp(bytes: Uint8Array): DecodedImage {
  const h = readBmpHeader(bytes);
  const rle = h.compression === 1 || h.compression === 2;
  if (
    !rle &&
    bytes.length <
      h.dataOffset + bmpStride(h) * (h.height - 1) + Math.ceil(h.width * h.bitsPerPixel / 8)
  ) {
    throw fail("data is truncated");
  }
  const data = new Uint8Array(h.width * h.height * 4);
  if (rle) decodeRle(bytes, h, data);
  else if (h.bitsPerPixel <= 8) decodeIndexed(bytes, h, data);
  else decodeTrueColor(bytes, h, data);
  return { width: h.width, height: h.height, data };
}
