/**
 * The fast PNG path: the platform inflates (`DecompressionStream("deflate")`, native
 * code in Deno and browsers) and the scanlines are unfiltered and expanded to RGBA
 * here on typed arrays. Every PNG colour type and bit depth, tRNS transparency and
 * Adam7 interlacing; 16-bit samples keep their high byte.
 *
 * @module
 */
import type { DecodedImage } from "./decoded_image.ts";

/** Why the fast decoder gave up; `unsupported` means "use the full decoder". */
export type PngFastFailure = "truncated" | "corrupt" | "unsupported";

/** A PNG the fast decoder did not decode, with the reason. */
export class PngFastError extends Error {
  /** The decoder's verdict. */
  readonly reason: PngFastFailure;
  constructor(reason: PngFastFailure, detail: string, options?: ErrorOptions) {
    super(`Cannot decode the PNG with the fast decoder: ${detail}`, options);
    this.name = "PngFastError";
    this.reason = reason;
  }
}

/** Options for {@linkcode decodePngFast}. */
export interface PngFastOptions {
  /**
   * Composite transparent pixels over this RGB colour (0-255 each) and return an
   * opaque image. Default: keep alpha as stored, like the full decoder.
   */
  background?: [number, number, number];
}

interface Header {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlace: number;
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};
// Adam7: x0, y0, dx, dy per pass.
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

const u32 = (b: Uint8Array, at: number) =>
  ((b[at] << 24) >>> 0) + ((b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);

async function inflate(data: Uint8Array<ArrayBuffer>, expected: number): Promise<Uint8Array> {
  const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream("deflate"));
  const out = new Uint8Array(expected);
  let at = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      // Extra data after the image is tolerated (as libpng does), never stored.
      const n = Math.min(value.length, expected - at);
      out.set(value.subarray(0, n), at);
      at += n;
    }
  } catch (cause) {
    throw new PngFastError("corrupt", "the zlib stream is broken", { cause });
  }
  if (at < expected) throw new PngFastError("truncated", "the image data ends early");
  return out;
}

/** Unfilters one scanline in place. line, prev: u8 [rowBytes] (prev all 0 for the first row). */
function unfilter(filter: number, line: Uint8Array, prev: Uint8Array, bpp: number): void {
  const n = line.length;
  switch (filter) {
    case 0:
      return;
    case 1:
      for (let i = bpp; i < n; i++) line[i] = line[i] + line[i - bpp];
      return;
    case 2:
      for (let i = 0; i < n; i++) line[i] = line[i] + prev[i];
      return;
    case 3:
      for (let i = 0; i < bpp; i++) line[i] = line[i] + (prev[i] >> 1);
      for (let i = bpp; i < n; i++) line[i] = line[i] + ((line[i - bpp] + prev[i]) >> 1);
      return;
    case 4:
      for (let i = 0; i < bpp; i++) line[i] = line[i] + prev[i];
      for (let i = bpp; i < n; i++) {
        const a = line[i - bpp], b = prev[i], c = prev[i - bpp];
        const p = a + b - c;
        const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        line[i] = line[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
      }
      return;
    default:
      throw new PngFastError("corrupt", `unknown filter type ${filter}`);
  }
}

/**
 * Expands one unfiltered scanline of `w` pixels to RGBA at `out[o], out[o + step * 4],
 * ...` (step > 1 for interlaced passes).
 */
function expand(
  h: Header,
  line: Uint8Array,
  w: number,
  out: Uint8Array,
  o: number,
  step: number,
  palette: Uint8Array,
  trns: Uint8Array | null,
): void {
  const { depth, colorType } = h;
  const s = step * 4;
  if (depth < 8) {
    // 1, 2 or 4-bit gray or palette indices, MSB first.
    const mask = (1 << depth) - 1;
    const perByte = 8 / depth;
    const scale = colorType === 0 ? 255 / mask : 0;
    const key = trns && colorType === 0 ? (trns[0] << 8) | trns[1] : -1;
    for (let x = 0; x < w; x++, o += s) {
      const v = (line[Math.floor(x / perByte)] >> (8 - depth * (1 + (x % perByte)))) & mask;
      if (colorType === 0) {
        const g = v * scale;
        out[o] = out[o + 1] = out[o + 2] = g;
        out[o + 3] = v === key ? 0 : 255;
      } else {
        out[o] = palette[v * 4];
        out[o + 1] = palette[v * 4 + 1];
        out[o + 2] = palette[v * 4 + 2];
        out[o + 3] = palette[v * 4 + 3];
      }
    }
    return;
  }
  const b = depth / 8; // bytes per sample; 16-bit keeps the high byte
  const ch = CHANNELS[colorType];
  const px = ch * b;
  // tRNS colour key, compared at full sample precision.
  const sample = (i: number) => (b === 2 ? (line[i] << 8) | line[i + 1] : line[i]);
  const key = (k: number) => trns ? (trns[2 * k] << 8) | trns[2 * k + 1] : -1;
  switch (colorType) {
    case 0: {
      const k = key(0);
      for (let x = 0, i = 0; x < w; x++, i += px, o += s) {
        out[o] = out[o + 1] = out[o + 2] = line[i];
        out[o + 3] = sample(i) === k ? 0 : 255;
      }
      return;
    }
    case 2: {
      const [kr, kg, kb] = [key(0), key(1), key(2)];
      for (let x = 0, i = 0; x < w; x++, i += px, o += s) {
        out[o] = line[i];
        out[o + 1] = line[i + b];
        out[o + 2] = line[i + 2 * b];
        out[o + 3] = trns && sample(i) === kr && sample(i + b) === kg && sample(i + 2 * b) === kb
          ? 0
          : 255;
      }
      return;
    }
    case 3:
      for (let x = 0; x < w; x++, o += s) {
        const v = line[x] * 4;
        out[o] = palette[v];
        out[o + 1] = palette[v + 1];
        out[o + 2] = palette[v + 2];
        out[o + 3] = palette[v + 3];
      }
      return;
    case 4:
      for (let x = 0, i = 0; x < w; x++, i += px, o += s) {
        out[o] = out[o + 1] = out[o + 2] = line[i];
        out[o + 3] = line[i + b];
      }
      return;
    default: // 6
      for (let x = 0, i = 0; x < w; x++, i += px, o += s) {
        out[o] = line[i];
        out[o + 1] = line[i + b];
        out[o + 2] = line[i + 2 * b];
        out[o + 3] = line[i + 3 * b];
      }
  }
}

function readChunks(bytes: Uint8Array) {
  if (bytes.length < 33) throw new PngFastError("truncated", "the header is cut short");
  let at = 8;
  let header: Header | null = null;
  const palette = new Uint8Array(256 * 4);
  let paletteSize = 0;
  let trns: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  let idatLength = 0;
  let ended = false;
  while (at + 8 <= bytes.length) {
    const length = u32(bytes, at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (at + 12 + length > bytes.length) {
      if (type !== "IDAT") throw new PngFastError("truncated", `the ${type} chunk is cut short`);
    }
    at += 12 + length;
    if (type === "IHDR") {
      if (length !== 13) throw new PngFastError("corrupt", "IHDR is not 13 bytes");
      header = {
        width: u32(data, 0),
        height: u32(data, 4),
        depth: data[8],
        colorType: data[9],
        interlace: data[12],
      };
      const { depth, colorType, interlace } = header;
      if (
        !DEPTHS[colorType]?.includes(depth) || data[10] !== 0 || data[11] !== 0 || interlace > 1
      ) {
        throw new PngFastError("unsupported", "unknown colour type, depth or method");
      }
    } else if (type === "PLTE") {
      paletteSize = Math.min(Math.floor(length / 3), 256);
      for (let i = 0; i < paletteSize; i++) {
        palette.set([data[3 * i], data[3 * i + 1], data[3 * i + 2], 255], 4 * i);
      }
    } else if (type === "tRNS") {
      trns = data.slice();
    } else if (type === "IDAT") {
      idat.push(data);
      idatLength += data.length;
    } else if (type === "IEND") {
      ended = true;
      break;
    }
  }
  if (!header) throw new PngFastError("corrupt", "there is no IHDR");
  if (header.colorType === 3) {
    if (paletteSize === 0) throw new PngFastError("corrupt", "a palette image has no PLTE");
    if (trns) { for (let i = 0; i < Math.min(trns.length, 256); i++) palette[4 * i + 3] = trns[i]; }
  }
  const all = new Uint8Array(idatLength);
  let o = 0;
  for (const part of idat) {
    all.set(part, o);
    o += part.length;
  }
  return { header, palette, trns: header.colorType === 3 ? null : trns, idat: all, ended };
}

/**
 * Decodes a PNG to RGBA: `fetch`-free, native inflate, typed-array unfiltering.
 *
 * @throws {PngFastError} `truncated` or `corrupt` for a broken file, `unsupported` for
 * a header this decoder does not know (the full decoder gets it).
 *
 * @example
 * ```ts
 * import { decodePngFast } from "./png_fast.ts";
 *
 * const img = await decodePngFast(await Deno.readFile("tests/fixtures/coffee.png"));
 * [img.width, img.height]; // [400, 300]
 * ```
 */
export async function decodePngFast(
  bytes: Uint8Array,
  options: PngFastOptions = {},
): Promise<DecodedImage> {
  const { header, palette, trns, idat } = readChunks(bytes);
  const { width, height, depth, colorType, interlace } = header;
  if (width === 0 || height === 0) throw new PngFastError("corrupt", "the image has no pixels");
  const bitsPerPixel = CHANNELS[colorType] * depth;
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const rowBytes = (w: number) => Math.ceil((w * bitsPerPixel) / 8);
  const passes = interlace
    ? ADAM7.map(([x0, y0, dx, dy]) => ({
      x0,
      y0,
      dx,
      dy,
      w: Math.ceil((width - x0) / dx),
      h: Math.ceil((height - y0) / dy),
    })).filter((p) => p.w > 0 && p.h > 0)
    : [{ x0: 0, y0: 0, dx: 1, dy: 1, w: width, h: height }];
  let total = 0;
  for (const p of passes) total += (rowBytes(p.w) + 1) * p.h;
  const raw = await inflate(idat, total);
  const out = new Uint8Array(width * height * 4);
  let at = 0;
  for (const p of passes) {
    const n = rowBytes(p.w);
    let prev: Uint8Array = new Uint8Array(n);
    for (let y = 0; y < p.h; y++) {
      const filter = raw[at];
      const line = raw.subarray(at + 1, at + 1 + n);
      at += n + 1;
      unfilter(filter, line, prev, bpp);
      const row = p.y0 + y * p.dy;
      expand(header, line, p.w, out, (row * width + p.x0) * 4, p.dx, palette, trns);
      prev = line;
    }
  }
  const bg = options.background;
  if (bg) {
    for (let o = 0; o < out.length; o += 4) {
      const a = out[o + 3];
      if (a === 255) continue;
      for (let c = 0; c < 3; c++) {
        out[o + c] = Math.round((out[o + c] * a + bg[c] * (255 - a)) / 255);
      }
      out[o + 3] = 255;
    }
  }
  return { width, height, data: out };
}
