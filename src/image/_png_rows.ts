/**
 * One PNG scanline at a time: undo its filter (PNG 9.2) and turn its samples into RGBA 8-bit
 * exactly as imagescript's decoder does (probed, see tests/image/png_stream_test.ts): 16-bit
 * samples keep their high byte, 1/2/4-bit grey is scaled to 0..255 (x 255, 85, 17), a pixel
 * that matches a grey or RGB tRNS key (compared on the samples as stored, all 16 bits) becomes
 * (0, 0, 0, 0), and a palette index past the palette is (0, 0, 0, 255).
 *
 * @module
 */
import { PNG_CHANNELS, type PngChunks } from "./_png_chunks.ts";

/** Bytes per complete pixel, at least 1: the distance the Sub, Average and Paeth filters look back. */
export function filterStride(png: PngChunks): number {
  return Math.max(1, (PNG_CHANNELS[png.colorType] * png.bitDepth) >> 3);
}

/** Bytes of one scanline of `width` pixels, without its filter byte. */
export function rowBytes(png: PngChunks, width: number): number {
  return Math.ceil((width * PNG_CHANNELS[png.colorType] * png.bitDepth) / 8);
}

/**
 * Undoes filter `type` on `cur` in place, `prev` being the previous scanline unfiltered
 * (zeros for a pass's first row). Throws on a filter type over 4.
 */
export function unfilter(type: number, cur: Uint8Array, prev: Uint8Array, bpp: number): void {
  const n = cur.length;
  if (type === 0) return;
  if (type === 1) {
    for (let i = bpp; i < n; i++) cur[i] = (cur[i] + cur[i - bpp]) & 0xff;
  } else if (type === 2) {
    for (let i = 0; i < n; i++) cur[i] = (cur[i] + prev[i]) & 0xff;
  } else if (type === 3) {
    for (let i = 0; i < bpp; i++) cur[i] = (cur[i] + (prev[i] >> 1)) & 0xff;
    for (let i = bpp; i < n; i++) cur[i] = (cur[i] + ((cur[i - bpp] + prev[i]) >> 1)) & 0xff;
  } else if (type === 4) {
    for (let i = 0; i < bpp; i++) cur[i] = (cur[i] + prev[i]) & 0xff;
    for (let i = bpp; i < n; i++) {
      const a = cur[i - bpp], b = prev[i], c = prev[i - bpp];
      const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
      const pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      cur[i] = (cur[i] + pred) & 0xff;
    }
  } else {
    throw new Error(`png: bad filter type ${type}`);
  }
}

/** Writes `width` pixels of one unfiltered scanline as RGBA into `out` [width, 4]. */
export type RowConverter = (row: Uint8Array, width: number, out: Uint8Array) => void;

// 256 RGBA entries: the palette with its tRNS alphas; indices past the palette (0, 0, 0, 255).
function paletteTable(png: PngChunks): Uint32Array {
  const table = new Uint8Array(256 * 4);
  const plte = png.palette!;
  const trns = png.trns ?? new Uint8Array(0);
  for (let i = 0; i < 256; i++) {
    if (i * 3 < plte.length) table.set(plte.subarray(i * 3, i * 3 + 3), i * 4);
    table[i * 4 + 3] = i * 3 < plte.length && i < trns.length ? trns[i] : 255;
  }
  return new Uint32Array(table.buffer);
}

// Sample x of a packed low-depth row (depth 1, 2 or 4).
const packed = (row: Uint8Array, x: number, depth: number) =>
  (row[(x * depth) >> 3] >> (8 - depth - ((x * depth) & 7))) & ((1 << depth) - 1);

function greyConverter(png: PngChunks): RowConverter {
  const d = png.bitDepth;
  const key = png.trns ? (png.trns[0] << 8) | png.trns[1] : -1;
  const scale = d < 8 ? 255 / ((1 << d) - 1) : 1;
  return (row, width, out) => {
    for (let x = 0, o = 0; x < width; x++, o += 4) {
      const v = d === 16
        ? (row[2 * x] << 8) | row[2 * x + 1]
        : d === 8
        ? row[x]
        : packed(row, x, d);
      if (v === key) {
        out[o] =
          out[o + 1] =
          out[o + 2] =
          out[o + 3] =
            0;
        continue;
      }
      out[o] = out[o + 1] = out[o + 2] = d === 16 ? v >> 8 : v * scale;
      out[o + 3] = 255;
    }
  };
}

function rgbConverter(png: PngChunks): RowConverter {
  const t = png.trns;
  const key = t ? [(t[0] << 8) | t[1], (t[2] << 8) | t[3], (t[4] << 8) | t[5]] : null;
  const [kr, kg, kb] = key ?? [-1, -1, -1];
  if (png.bitDepth === 8) {
    return (row, width, out) => {
      for (let x = 0, s = 0, o = 0; x < width; x++, s += 3, o += 4) {
        const r = row[s], g = row[s + 1], b = row[s + 2];
        const clear = r === kr && g === kg && b === kb;
        out[o] = clear ? 0 : r;
        out[o + 1] = clear ? 0 : g;
        out[o + 2] = clear ? 0 : b;
        out[o + 3] = clear ? 0 : 255;
      }
    };
  }
  return (row, width, out) => {
    for (let x = 0, s = 0, o = 0; x < width; x++, s += 6, o += 4) {
      const r = (row[s] << 8) | row[s + 1], g = (row[s + 2] << 8) | row[s + 3];
      const b = (row[s + 4] << 8) | row[s + 5];
      const clear = r === kr && g === kg && b === kb;
      out[o] = clear ? 0 : row[s];
      out[o + 1] = clear ? 0 : row[s + 2];
      out[o + 2] = clear ? 0 : row[s + 4];
      out[o + 3] = clear ? 0 : 255;
    }
  };
}

function paletteConverter(png: PngChunks): RowConverter {
  const table = paletteTable(png);
  const d = png.bitDepth;
  return (row, width, out) => {
    const out32 = new Uint32Array(out.buffer, out.byteOffset, width);
    for (let x = 0; x < width; x++) out32[x] = table[d === 8 ? row[x] : packed(row, x, d)];
  };
}

// Grey + alpha and RGBA: the high byte of each 16-bit sample, 8-bit samples as they are.
function alphaConverter(png: PngChunks): RowConverter {
  const step = png.bitDepth >> 3;
  if (png.colorType === 6 && step === 1) {
    return (row, width, out) => out.set(row.subarray(0, width * 4));
  }
  if (png.colorType === 6) {
    return (row, width, out) => {
      for (let i = 0, n = width * 4; i < n; i++) out[i] = row[2 * i];
    };
  }
  return (row, width, out) => {
    for (let x = 0, s = 0, o = 0; x < width; x++, s += 2 * step, o += 4) {
      out[o] = out[o + 1] = out[o + 2] = row[s];
      out[o + 3] = row[s + step];
    }
  };
}

/** The converter for the image's colour type and bit depth. */
export function rowConverter(png: PngChunks): RowConverter {
  switch (png.colorType) {
    case 0:
      return greyConverter(png);
    case 2:
      return rgbConverter(png);
    case 3:
      return paletteConverter(png);
    default:
      return alphaConverter(png);
  }
}
