/**
 * A PNG decoder that streams: the IDAT data is inflated a slice at a time by the web-standard
 * `DecompressionStream("deflate")`, each scanline is unfiltered as it arrives and either written
 * into the RGBA output (scale 1) or added into f x f box sums (scale 2, 4 or 8). A reduced
 * decode therefore holds two scanlines, the reduced output and its sums, and inflate's window:
 * never the image's inflated rows nor its full-size RGBA. Interlaced (Adam7) images work the
 * same way, pass by pass, since a box sum does not care in which order its pixels arrive.
 *
 * At scale 1 the output equals imagescript's decoder bit for bit (tests/image/png_stream_test.ts),
 * and it refuses the same broken files (`_png_chunks.ts`, plus a zlib stream that ends early,
 * has a bad checksum or holds more than the image). One difference: a zlib stream cut right
 * after its last image byte, its Adler-32 missing, is accepted (`DecompressionStream` does not
 * say whether its input ended cleanly); imagescript refuses it.
 *
 * @module
 */
import type { DecodedImage } from "./decoded_image.ts";
import { type PngChunks, readPngChunks } from "./_png_chunks.ts";
import {
  directLayout,
  filterStride,
  laneStep,
  RGBA_LAYOUT,
  rowBytes,
  rowConverter,
  type RowLayout,
} from "./_png_rows.ts";
import { type RowUnfilter, scriptUnfilter, wasmUnfilter } from "./_png_unfilter.ts";

/** Box sizes a PNG can be reduced by. */
export type PngScale = 1 | 2 | 4 | 8;

/** Options for {@linkcode decodePngStream}. */
export interface PngStreamOptions {
  /** Decode at 1/`scale`: each output pixel the rounded mean of an f x f box. Default 1. */
  scale?: PngScale;
  /** Checked between inflated chunks: an aborted signal stops the decode with its reason. */
  signal?: AbortSignal;
  /**
   * Who undoes the row filters: `"wasm"` (default; the decode module, falling back to the
   * script when it cannot be had) or `"script"` (the TypeScript reference).
   */
  unfilter?: "wasm" | "script";
}

/**
 * Inflated bytes one slice of compressed data should yield: what is decoded between two
 * looks at the clock (yields and deadlines). A slice is sized from the file's own ratio of
 * scanline bytes to compressed bytes, within {@linkcode SLICE_MIN} and {@linkcode SLICE_MAX}.
 */
const SLICE_OUTPUT = 1 << 20;
/** Smallest slice: one byte of zlib data inflates to at most 1,032, so at most ~0.5 MB out. */
const SLICE_MIN = 512;
const SLICE_MAX = 64 * 1024;

/** Compressed bytes to hand the inflater at a time for `rawBytes` of scanlines. */
function sliceFor(idat: readonly Uint8Array[], rawBytes: number): number {
  const compressed = idat.reduce((n, c) => n + c.length, 0);
  const ratio = rawBytes / Math.max(1, compressed);
  return Math.min(SLICE_MAX, Math.max(SLICE_MIN, Math.floor(SLICE_OUTPUT / ratio)));
}

// Adam7 passes as [x0, y0, dx, dy]; a plain image is one pass.
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [
  0,
  1,
  1,
  2,
]];
const PLAIN = [[0, 0, 1, 1]];

/** One pass's geometry: its pixels sit at (x0 + i * dx, y0 + j * dy). */
interface Pass {
  x0: number;
  y0: number;
  dx: number;
  dy: number;
  width: number;
  height: number;
  /** Bytes of one scanline without its filter byte. */
  bytes: number;
}

function passesOf(png: PngChunks): Pass[] {
  return (png.interlaced ? ADAM7 : PLAIN).map(([x0, y0, dx, dy]) => {
    const width = Math.max(0, Math.ceil((png.width - x0) / dx));
    const height = Math.max(0, Math.ceil((png.height - y0) / dy));
    return { x0, y0, dx, dy, width, height, bytes: rowBytes(png, width) };
  }).filter((p) => p.width > 0 && p.height > 0);
}

/**
 * Where rows go: `row` holds `pass.width` pixels of row `y` of the picture, laid out as
 * `layout` says (the full-size sink takes only {@linkcode RGBA_LAYOUT}).
 */
interface RowSink {
  put(pass: Pass, y: number, row: Uint8Array, layout: RowLayout): void;
  finish(): DecodedImage;
}

// Scale 1: pixels written where they belong.
function fullSink(width: number, height: number): RowSink {
  const data = new Uint8Array(width * height * 4);
  const out32 = new Uint32Array(data.buffer);
  return {
    put(pass, y, rgba) {
      if (pass.dx === 1) return data.set(rgba, y * width * 4);
      const src = new Uint32Array(rgba.buffer, rgba.byteOffset, pass.width);
      for (let i = 0, o = y * width + pass.x0; i < pass.width; i++, o += pass.dx) out32[o] = src[i];
    },
    finish: () => ({ width, height, data }),
  };
}

/** Full-size pixels in reduced pixel `i`'s box along an axis of `size` pixels. */
const boxSpan = (i: number, f: number, size: number) => Math.min(f, size - i * f);

/**
 * Writes reduced row `j` from its sums: each channel `floor((sum + n / 2) / n)` for a box of
 * `n` full-size pixels (edge boxes hold only the pixels inside the picture), so halves round up.
 */
function writeMeans(
  sums: Uint16Array,
  out: Uint8Array,
  j: number,
  f: number,
  size: { width: number; height: number },
): void {
  const outW = Math.ceil(size.width / f);
  const bh = boxSpan(j, f, size.height);
  for (let i = 0; i < outW; i++) {
    const n = boxSpan(i, f, size.width) * bh;
    for (let c = 0, k = i * 4; c < 4; c++, k++) out[k] = Math.floor((sums[k] + (n >> 1)) / n);
  }
}

// Adds a whole row into `sums` [outW, 4], one box at a time in locals (about twice as fast
// as adding each pixel into the array).
function addBoxes(
  row: Uint8Array,
  { stride, offsets: [r, g, b, a] }: RowLayout,
  width: number,
  shift: number,
  sums: Uint16Array,
): void {
  const outW = Math.ceil(width / (1 << shift));
  for (let bx = 0, s = 0; bx < outW; bx++) {
    const n = Math.min(width, (bx + 1) << shift) - (bx << shift);
    let sr = 0, sg = 0, sb = 0, sa = a < 0 ? 255 * n : 0;
    const end = s + n * stride;
    for (; s < end; s += stride) {
      sr += row[s + r];
      sg += row[s + g];
      sb += row[s + b];
      if (a >= 0) sa += row[s + a];
    }
    const k = bx << 2;
    sums[k] += sr;
    sums[k + 1] += sg;
    sums[k + 2] += sb;
    sums[k + 3] += sa;
  }
}

// Adds an interlaced pass's row (pixels dx apart) into `sums` [outW, 4], pixel by pixel.
function addPixels(
  row: Uint8Array,
  { stride, offsets: [r, g, b, a] }: RowLayout,
  pass: Pass,
  shift: number,
  sums: Uint16Array,
): void {
  for (let i = 0, x = pass.x0, s = 0; i < pass.width; i++, x += pass.dx, s += stride) {
    const k = (x >> shift) << 2;
    sums[k] += row[s + r];
    sums[k + 1] += row[s + g];
    sums[k + 2] += row[s + b];
    sums[k + 3] += a < 0 ? 255 : row[s + a];
  }
}

// Scale f: box sums (at most 64 x 255 per channel, so 16 bits). A plain image keeps one reduced
// row of sums and writes it when its last full-size row has arrived; an interlaced one keeps
// the whole reduced image's, since every pass comes back to every row.
function boxSink(width: number, height: number, f: number, interlaced: boolean): RowSink {
  const shift = Math.log2(f);
  const outW = Math.ceil(width / f), outH = Math.ceil(height / f);
  const data = new Uint8Array(outW * outH * 4);
  const sums = new Uint16Array(outW * 4 * (interlaced ? outH : 1));
  const size = { width, height };
  return {
    put(pass, y, row, layout) {
      const base = interlaced ? (y >> shift) * outW * 4 : 0;
      if (pass.dx === 1) addBoxes(row, layout, width, shift, sums.subarray(base));
      else addPixels(row, layout, pass, shift, sums.subarray(base));
      if (interlaced || ((y + 1) % f !== 0 && y !== height - 1)) return;
      const j = y >> shift;
      writeMeans(sums, data.subarray(j * outW * 4), j, f, size);
      sums.fill(0);
    },
    finish() {
      if (interlaced) {
        for (let j = 0; j < outH; j++) {
          const row = j * outW * 4;
          writeMeans(sums.subarray(row), data.subarray(row), j, f, size);
        }
      }
      const reduction = { width, height, scale: f, left: 0, top: 0 };
      return { width: outW, height: outH, data, reduction };
    },
  };
}

/**
 * Longest stretch of decoding between two turns of the event loop, in ms: what another call
 * or a deadline waits at most (plus one slice), for about 4 ms of every stretch.
 */
const YIELD_MS = 20;

/** A turn of the event loop (a timer; nested ones are clamped to 4 ms, hence YIELD_MS). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** The zlib stream inflated chunk by chunk, fed `slice` bytes at a time as it is read. */
async function* inflate(
  idat: Uint8Array[],
  slice: number,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  let chunk = 0, at = 0;
  const source = new ReadableStream<BufferSource>({
    pull(controller) {
      while (chunk < idat.length && at >= idat[chunk].length) [chunk, at] = [chunk + 1, 0];
      if (chunk === idat.length) return controller.close();
      controller.enqueue(idat[chunk].slice(at, at + slice));
      at += slice;
    },
  }, { highWaterMark: 0 });
  const reader = source.pipeThrough(new DecompressionStream("deflate")).getReader();
  try {
    for (;;) {
      signal?.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * Decodes a PNG (any colour type, bit depth and interlacing) into RGBA 8-bit, at full size or
 * reduced by `scale`. A reduced result is `ceil(width / scale) x ceil(height / scale)` pixels,
 * pixel (i, j) the mean of the full-size pixels in `[i * scale, (i + 1) * scale) x [j * scale,
 * (j + 1) * scale)` that lie inside the picture, rounded half up, per channel (alpha included,
 * not premultiplied); it carries a `reduction` for preprocessing.
 *
 * @throws {Error} (message starting "png:") where imagescript's decoder refuses the file, and
 * the signal's reason once it is aborted.
 *
 * @example
 * ```ts
 * import { decodePngStream } from "./png_stream.ts";
 *
 * const png = await Deno.readFile("tests/fixtures/coffee.png");
 * const small = await decodePngStream(png, { scale: 4 });
 * small.reduction?.scale; // 4
 * ```
 */
export async function decodePngStream(
  bytes: Uint8Array,
  options: PngStreamOptions = {},
): Promise<DecodedImage> {
  const { scale = 1, signal } = options;
  const png = readPngChunks(bytes);
  const passes = passesOf(png);
  const sink = scale === 1
    ? fullSink(png.width, png.height)
    : boxSink(png.width, png.height, scale, png.interlaced);
  const maxBytes = Math.max(...passes.map((p) => p.bytes));
  const bpp = filterStride(png);
  const rows: RowUnfilter = (options.unfilter !== "script" && await wasmUnfilter(maxBytes, bpp)) ||
    scriptUnfilter(maxBytes, bpp, laneStep(png));
  const convert = rowConverter(png);
  // Reduced decodes sum straight from the scanline where its layout allows (no RGBA copy).
  const direct = scale === 1 ? null : directLayout(png);
  const rgba = new Uint8Array(png.width * 4);
  let p = 0, row = 0, filter = -1, fill = 0;
  let turn = performance.now();
  const raw = passes.reduce((n, pass) => n + (pass.bytes + 1) * pass.height, 0);
  for await (const chunk of inflate(png.idat, sliceFor(png.idat, raw), signal)) {
    for (let i = 0; i < chunk.length;) {
      if (p === passes.length) throw new Error("png: more image data than the image holds");
      if (filter < 0) {
        filter = chunk[i++]; // each scanline starts with its filter type
        continue;
      }
      const pass = passes[p];
      const take = Math.min(pass.bytes - fill, chunk.length - i);
      rows.raw.set(chunk.subarray(i, i + take), fill);
      [i, fill] = [i + take, fill + take];
      if (fill < pass.bytes) break;
      const line = rows.unfilter(filter, pass.bytes);
      const y = pass.y0 + row * pass.dy;
      if (direct) sink.put(pass, y, line, direct);
      else {
        convert(line, pass.width, rgba);
        sink.put(pass, y, rgba.subarray(0, pass.width * 4), RGBA_LAYOUT);
      }
      [filter, fill] = [-1, 0];
      // The stream's reads settle as microtasks: without a macrotask now and then, a large
      // image would hold its thread (timers, other calls, its own deadline) for the whole decode.
      if (performance.now() - turn > YIELD_MS) {
        await nextTurn();
        signal?.throwIfAborted();
        turn = performance.now();
      }
      if (++row < pass.height) continue;
      [p, row] = [p + 1, 0];
      rows.reset(); // a pass starts as if after a row of zeros
    }
  }
  if (p < passes.length) throw new Error("png: the image data ends early");
  return sink.finish();
}
