/**
 * The fast JPEG path: wasm/decode/jpeg_decode.wasm (our zero-dependency Rust decoder)
 * decodes baseline and progressive JPEGs straight to 1/1, 1/2, 1/4 or 1/8 of their size
 * by running a reduced inverse DCT on each 8x8 block, so a 12-megapixel photo headed
 * for a 224x224 model input is decoded at 500x375 without ever existing at full size.
 *
 * The module is compiled once per process from a URL beside this file (`fetch` for
 * http(s), the file system for file: URLs). Decodes reuse one instance (memory that is
 * already paged in is much faster), and the pixels are copied out of it; an instance that
 * traps is dropped, so a bug in one decode cannot affect the next, and one that grew past
 * 32 MiB is dropped too, so a large image's memory goes away with it.
 *
 * @module
 */
import type { DecodedImage } from "./decoded_image.ts";
import { readDimensions } from "./_header.ts";

/** The DCT scale denominators: the image is decoded at 1/denominator of its size. */
export type JpegScale = 1 | 2 | 4 | 8;

/** Why the fast decoder gave up; `unsupported` and `out_of_memory` mean "use the full decoder". */
export type JpegFastFailure = "truncated" | "corrupt" | "unsupported" | "out_of_memory";

/** A JPEG the fast decoder did not decode, with the reason. */
export class JpegFastError extends Error {
  /** The decoder's verdict. */
  readonly reason: JpegFastFailure;
  constructor(reason: JpegFastFailure, options?: ErrorOptions) {
    super(
      `Cannot decode the JPEG with the fast decoder: it is ${reason.replaceAll("_", " ")}`,
      options,
    );
    this.name = "JpegFastError";
    this.reason = reason;
  }
}

const REASONS: Record<number, JpegFastFailure> = {
  1: "truncated",
  2: "corrupt",
  3: "unsupported",
  4: "out_of_memory",
};

/** The committed module, resolved beside this file so it works from a checkout and when served. */
const WASM_URL = new URL("../../wasm/decode/jpeg_decode.wasm", import.meta.url);

let compiled: Promise<WebAssembly.Module> | undefined;

async function readModule(url: URL): Promise<Uint8Array<ArrayBuffer>> {
  if (url.protocol === "file:") return await Deno.readFile(url);
  const res = await fetch(url);
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`Cannot load the JPEG decoder: ${url} answered HTTP ${res.status}`);
  }
  return new Uint8Array(await res.arrayBuffer());
}

/** The compiled module once a compile has finished (for synchronous callers). */
let ready: WebAssembly.Module | undefined;

function jpegModule(): Promise<WebAssembly.Module> {
  if (ready) return Promise.resolve(ready);
  // One compile per process; a failure is not cached, so a later call can retry.
  compiled ??= readModule(WASM_URL).then((b) => WebAssembly.compile(b)).then((m) => {
    ready = m;
    return m;
  }).catch((e) => {
    compiled = undefined;
    throw e;
  });
  return compiled;
}

/**
 * The module for a synchronous caller: compiled on the spot from a file: URL (once per
 * process), else whatever an earlier asynchronous load left (`undefined` until then, when
 * the module is served over http(s), or when it cannot be read).
 */
function jpegModuleSync(): WebAssembly.Module | undefined {
  if (ready || WASM_URL.protocol !== "file:") {
    if (!ready) jpegModule().catch(() => {}); // start it for the next call
    return ready;
  }
  try {
    ready = new WebAssembly.Module(Deno.readFileSync(WASM_URL));
  } catch {
    return undefined; // no read permission or no file: the caller's fallback runs
  }
  return ready;
}

/**
 * The decoding instance between decodes. Reusing one is a quarter faster for a 640x480
 * photo than a fresh instance, whose memory has to be paged in (4.7 -> 3.9 ms measured);
 * the module reuses its input and output buffers, so its memory stays at the largest
 * image's size, and an instance past {@linkcode KEEP_DECODER_BYTES} is dropped instead.
 */
let idleDecoder: JpegExports | undefined;

/** An instance whose memory grew past this (a large full-size decode) is not kept. */
const KEEP_DECODER_BYTES = 32 << 20;

function keepDecoder(wasm: JpegExports): void {
  if (wasm.memory.buffer.byteLength <= KEEP_DECODER_BYTES) idleDecoder = wasm;
}

interface JpegExports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  input(bytes: number): number;
  jpeg_decode(ptr: number, len: number, denom: number): number;
  resample_rgb(ptr: number, len: number, out: number, outLen: number): number;
}

// The SOF size (the decoder succeeded, so it is there and valid).
function readJpegSize(bytes: Uint8Array): { width: number; height: number } {
  const size = readDimensions(bytes, "jpeg");
  if (!size) throw new JpegFastError("corrupt");
  return size;
}

/**
 * The largest denominator whose decoded size still covers `need` (width, height): the
 * decoder's output is `ceil(width / d) x ceil(height / d)`.
 */
export function largestJpegScale(
  width: number,
  height: number,
  fits: (width: number, height: number) => boolean,
): JpegScale {
  for (const d of [8, 4, 2] as const) {
    if (fits(Math.ceil(width / d), Math.ceil(height / d))) return d;
  }
  return 1;
}

/**
 * Decodes a JPEG to RGBA at 1/`scale` of its stored size (EXIF orientation is not
 * applied): `ceil(width / scale) x ceil(height / scale)` pixels, each the mean of the
 * full-size pixels it covers (chroma upsampled by repetition where needed).
 *
 * @throws {JpegFastError} With `reason` `truncated` or `corrupt` for a broken stream,
 * `unsupported` for JPEGs it leaves to a full decoder (arithmetic coding, lossless,
 * hierarchical, 12-bit, two components, 3:1 sampling), `out_of_memory`; a
 * `WebAssembly.RuntimeError` if the decoder traps.
 *
 * @example
 * ```ts
 * import { decodeJpegFast } from "./jpeg_fast.ts";
 *
 * const img = await decodeJpegFast(await Deno.readFile("tests/fixtures/chelsea.jpg"), 2);
 * [img.width, img.height]; // [224, 144]
 * ```
 */
export async function decodeJpegFast(
  bytes: Uint8Array,
  scale: JpegScale = 1,
): Promise<DecodedImage> {
  const module = await jpegModule();
  // Taken out while in use; a decode that traps (a bug) never puts its instance back.
  const wasm = idleDecoder ??
    new WebAssembly.Instance(module, {}).exports as unknown as JpegExports;
  idleDecoder = undefined;
  const ptr = wasm.input(bytes.length);
  if (ptr === 0) throw new JpegFastError("out_of_memory");
  new Uint8Array(wasm.memory.buffer, ptr, bytes.length).set(bytes);
  const result = wasm.jpeg_decode(ptr, bytes.length, scale);
  if (result <= 0) {
    keepDecoder(wasm);
    throw new JpegFastError(REASONS[-result] ?? "corrupt");
  }
  const view = new DataView(wasm.memory.buffer, result, 8);
  const width = view.getUint32(0, true);
  const height = view.getUint32(4, true);
  // A copy: the instance decodes the next image into the same memory.
  const data = new Uint8Array(
    wasm.memory.buffer.slice(result + 8, result + 8 + width * height * 4),
  );
  keepDecoder(wasm);
  if (scale === 1) return { width, height, data };
  const full = readJpegSize(bytes);
  return { width, height, data, reduction: { ...full, scale, left: 0, top: 0 } };
}

/** Taps of one axis, as in `_filter.ts` (repeated here so this module imports no resize code). */
interface AxisTaps {
  start: Int32Array;
  count: Int32Array;
  weights: Float64Array;
  stride: number;
}

/**
 * One long-lived instance for resampling with its input and output regions, reused while
 * they are large enough: memory a fresh instance has to page in costs more than the
 * resample itself (0.7 ms for a 640x480 image on the bench machine).
 */
let resampler:
  | { wasm: JpegExports; at: number; room: number; out: number; outRoom: number }
  | undefined;

/** Regions past this are served by a throwaway instance, so a huge image's memory goes away. */
const KEEP_BYTES = 16 << 20;

function resampleRegions(len: number, outLen: number) {
  const fits = (r: NonNullable<typeof resampler>) => r.room >= len && r.outRoom >= outLen;
  if (resampler && fits(resampler)) return resampler;
  const module = jpegModuleSync();
  if (!module) return undefined;
  const wasm = new WebAssembly.Instance(module, {}).exports as unknown as JpegExports;
  // Some headroom so a slightly larger image does not need a new instance.
  const room = Math.ceil(len * 1.25), outRoom = Math.ceil(outLen * 1.25);
  const r = { wasm, at: wasm.alloc(room), room, out: wasm.alloc(outRoom), outRoom };
  if (r.at === 0 || r.out === 0) return undefined;
  if (room + outRoom <= KEEP_BYTES) resampler = r;
  return r;
}

/**
 * The decoder module's `resample_rgb` export: the same antialiased resample as
 * `resampleRgbReference` in `_resample.ts`, bit for bit, run in WebAssembly (SIMD128) in a
 * long-lived instance. Only source rows `rowLo .. rowHi - 1` are copied in; every row `yt`
 * reads must lie there.
 *
 * src: RGBA u8 [H, width, 4] -> RGB f32 [yt outputs, xt outputs, 3], or `undefined` when
 * the module is not loaded (yet) or refuses the taps, so the caller runs the reference.
 *
 * @example
 * ```ts
 * import { resampleRgbWasm } from "./jpeg_fast.ts";
 *
 * const src = new Uint8Array([10, 20, 30, 255, 30, 40, 50, 255]); // 2x1 RGBA
 * const taps = (start: number[], count: number[], weights: number[], stride: number) => ({
 *   start: new Int32Array(start),
 *   count: new Int32Array(count),
 *   weights: new Float64Array(weights),
 *   stride,
 * });
 * const xt = taps([0], [2], [0.5, 0.5], 2);
 * const yt = taps([0], [1], [1], 1);
 * resampleRgbWasm(src, 2, [0, 1], xt, yt); // Float32Array [20, 30, 40]
 * ```
 */
export function resampleRgbWasm(
  src: Uint8Array,
  width: number,
  [rowLo, rowHi]: [number, number],
  xt: AxisTaps,
  yt: AxisTaps,
): Float32Array | undefined {
  const outW = xt.start.length, outH = yt.start.length;
  const rows = rowHi - rowLo;
  const header = 40;
  const xAt = header, yAt = xAt + outW * 8 + xt.weights.byteLength;
  const srcAt = yAt + outH * 8 + yt.weights.byteLength;
  const len = srcAt + rows * width * 4, outLen = outH * outW * 3 * 4;
  const r = resampleRegions(len, outLen);
  if (!r) return undefined;
  const mem = new Uint8Array(r.wasm.memory.buffer, r.at, len);
  const words = [width, rows, rowLo, outW, xt.stride, outH, yt.stride, srcAt, xAt, yAt];
  const view = new DataView(mem.buffer, r.at, header);
  words.forEach((w, i) => view.setUint32(4 * i, w, true));
  const put = (at: number, a: Int32Array | Float64Array) =>
    mem.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
  put(xAt, xt.start), put(xAt + 4 * outW, xt.count), put(xAt + 8 * outW, xt.weights);
  put(yAt, yt.start), put(yAt + 4 * outH, yt.count), put(yAt + 8 * outH, yt.weights);
  mem.set(src.subarray(rowLo * width * 4, rowHi * width * 4), srcAt);
  if (r.wasm.resample_rgb(r.at, len, r.out, outLen) !== 0) return undefined;
  // A copy: the next call reuses the output region.
  return new Float32Array(r.wasm.memory.buffer, r.out, outLen / 4).slice();
}
