/**
 * A PNG writer for tests: any colour type and bit depth, Adam7, a palette and tRNS, every row
 * filter (cycled row by row so all five are exercised), and the compressed data split over
 * several IDAT chunks. The decoders are checked against each other on what it writes.
 *
 * @module
 */
import { deflateSync } from "node:zlib";

/** What {@linkcode writePng} writes. */
export interface PngImage {
  width: number;
  height: number;
  /** 1, 2, 4, 8 or 16 (as PNG allows for the colour type). */
  bitDepth: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA. */
  colorType: number;
  /** Samples [height, width, channels], each below 2^bitDepth (palette indices for type 3). */
  samples: Uint16Array;
  interlaced?: boolean;
  /** RGB triples for colour type 3. */
  palette?: Uint8Array;
  /** The tRNS chunk's payload, as stored. */
  trns?: Uint8Array;
  /** Filter type of row r is `filters[r % filters.length]`; default [0, 1, 2, 3, 4]. */
  filters?: number[];
  /** Bytes of compressed data per IDAT chunk; default all in one. */
  idatSize?: number;
}

/** Samples per pixel of each colour type. */
export const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Adam7 passes as [x0, y0, dx, dy]. */
export const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [
  1,
  0,
  2,
  2,
], [0, 1, 1, 2]];

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 as PNG chunks use it. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One chunk: length, type, data, CRC. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

// One row of samples packed as PNG stores them (MSB first below 8 bits, big-endian at 16).
function packRow(img: PngImage, xs: number[], y: number): Uint8Array {
  const ch = PNG_CHANNELS[img.colorType];
  const d = img.bitDepth;
  const out = new Uint8Array(Math.ceil((xs.length * ch * d) / 8));
  let bit = 0;
  for (const x of xs) {
    for (let c = 0; c < ch; c++) {
      const v = img.samples[(y * img.width + x) * ch + c];
      if (d === 16) {
        out[bit >> 3] = v >> 8;
        out[(bit >> 3) + 1] = v & 0xff;
      } else out[bit >> 3] |= v << (8 - d - (bit & 7));
      bit += d;
    }
  }
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

// Filter byte + filtered row (the forward filter of PNG 9.2).
function filterRow(type: number, cur: Uint8Array, prev: Uint8Array, bpp: number): Uint8Array {
  const out = new Uint8Array(cur.length + 1);
  out[0] = type;
  for (let i = 0; i < cur.length; i++) {
    const a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
    const pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][type];
    out[i + 1] = (cur[i] - pred) & 0xff;
  }
  return out;
}

// The filtered scanlines of every pass (one pass when not interlaced), in file order.
function scanlines(img: PngImage): Uint8Array[] {
  const bpp = Math.max(1, (PNG_CHANNELS[img.colorType] * img.bitDepth) >> 3);
  const filters = img.filters ?? [0, 1, 2, 3, 4];
  const passes = img.interlaced ? ADAM7 : [[0, 0, 1, 1]];
  const rows: Uint8Array[] = [];
  let r = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const xs: number[] = [];
    for (let x = x0; x < img.width; x += dx) xs.push(x);
    if (xs.length === 0) continue;
    let prev: Uint8Array | null = null;
    for (let y = y0; y < img.height; y += dy) {
      const cur = packRow(img, xs, y);
      prev ??= new Uint8Array(cur.length);
      rows.push(filterRow(filters[r++ % filters.length], cur, prev, bpp));
      prev = cur;
    }
  }
  return rows;
}

/** The zlib stream of the image's filtered scanlines. */
export function pngData(img: PngImage): Uint8Array {
  const z = deflateSync(concat(scanlines(img)));
  return new Uint8Array(z.buffer, z.byteOffset, z.byteLength);
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

/** The IHDR payload for the image. */
export function ihdr(img: PngImage): Uint8Array {
  const h = new Uint8Array(13);
  const view = new DataView(h.buffer);
  view.setUint32(0, img.width);
  view.setUint32(4, img.height);
  h.set([img.bitDepth, img.colorType, 0, 0, img.interlaced ? 1 : 0], 8);
  return h;
}

/** A whole PNG file of the image, with `data` as its zlib stream (default {@linkcode pngData}). */
export function writePng(img: PngImage, data = pngData(img)): Uint8Array {
  const parts: Uint8Array[] = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])];
  parts.push(pngChunk("IHDR", ihdr(img)));
  if (img.palette) parts.push(pngChunk("PLTE", img.palette));
  if (img.trns) parts.push(pngChunk("tRNS", img.trns));
  const size = img.idatSize ?? data.length;
  for (let i = 0; i < data.length; i += size) {
    parts.push(pngChunk("IDAT", data.subarray(i, i + size)));
  }
  parts.push(pngChunk("IEND", new Uint8Array(0)));
  return concat(parts);
}

/** A random image of the spec's size, depth and colour type (palette of `paletteSize`). */
export function randomPng(
  spec: Omit<PngImage, "samples">,
  random: () => number,
  paletteSize = 1 << Math.min(spec.bitDepth, 8),
): PngImage {
  const ch = PNG_CHANNELS[spec.colorType];
  const samples = new Uint16Array(spec.width * spec.height * ch);
  const top = spec.colorType === 3 ? paletteSize : 2 ** spec.bitDepth;
  for (let i = 0; i < samples.length; i++) samples[i] = Math.floor(random() * top);
  return { ...spec, samples };
}
