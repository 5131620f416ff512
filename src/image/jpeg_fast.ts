/**
 * The fast JPEG path: wasm/decode/jpeg_decode.wasm (our zero-dependency Rust decoder)
 * decodes baseline and progressive JPEGs straight to 1/1, 1/2, 1/4 or 1/8 of their size
 * by running a reduced inverse DCT on each 8x8 block, so a 12-megapixel photo headed
 * for a 224x224 model input is decoded at 500x375 without ever existing at full size.
 *
 * The module is compiled once per process from a URL beside this file (`fetch` for
 * http(s), the file system for file: URLs). Decodes and resamples reuse one instance
 * (memory that is already paged in is much faster). A decoded image's pixels stay in it
 * until something reads `data`, so preprocessing resamples them where they lie; they are
 * copied out before the next decode overwrites them. An instance that traps is dropped, so
 * a bug in one decode cannot affect the next, and one that grew past 32 MiB is dropped too
 * (its images are copied out at once), so a large image's memory goes away with it.
 *
 * @module
 */
import type { DecodedImage } from "./decoded_image.ts";
import { readDimensions } from "./_header.ts";

/** The DCT scale denominators: the image is decoded at 1/denominator of its size. */
export type JpegScale = 1 | 2 | 4 | 8;

/**
 * Why the fast decoder gave up; `unsupported` and `out_of_memory` mean "use the full decoder".
 * `too_many_scans` and `over_budget` are the work limits of `wasm/decode/src/budget.rs`
 * ({@linkcode JPEG_MAX_SCANS}, {@linkcode JPEG_VISITS_PER_BLOCK}): the file is refused, and
 * must not go to a full decoder, which has no such limits.
 */
export type JpegFastFailure =
  | "truncated"
  | "corrupt"
  | "unsupported"
  | "out_of_memory"
  | "too_many_scans"
  | "over_budget";

/** The decoder's scan limit (`MAX_SCANS` in `wasm/decode/src/budget.rs`). */
export const JPEG_MAX_SCANS = 100;

/** The decoder's block-visit budget per 8x8 block (`VISITS_PER_BLOCK` in `budget.rs`). */
export const JPEG_VISITS_PER_BLOCK = 16;

/** The work of the last fast decode in this process, as the decoder counted it. */
export interface JpegWork {
  /** Scans started (the refused one included). */
  scans: number;
  /** 8x8 block visits charged: every block of every scan started. */
  blockVisits: number;
  /** The block-visit budget: {@linkcode JPEG_VISITS_PER_BLOCK} times the frame's blocks. */
  blockBudget: number;
}

let lastWork: JpegWork = { scans: 0, blockVisits: 0, blockBudget: 0 };

/**
 * The scans and block visits of the last {@linkcode decodeJpegFast} call (decoded or
 * refused), so tests can check the budgets bound the work without timing it.
 *
 * @example
 * ```ts
 * import { decodeJpegFast, lastJpegWork } from "./jpeg_fast.ts";
 *
 * await decodeJpegFast(await Deno.readFile("tests/fixtures/chelsea.jpg"));
 * lastJpegWork().scans; // 1 for a baseline JPEG
 * ```
 */
export function lastJpegWork(): JpegWork {
  return { ...lastWork };
}

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
  5: "too_many_scans",
  6: "over_budget",
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
 * One long-lived instance that decodes and resamples, and its decode count: reusing an
 * instance is a quarter faster for a 640x480 photo than a fresh one, whose memory has to
 * be paged in (4.7 -> 3.9 ms measured). The module reuses its input, output and resample
 * buffers, so its memory stays at the largest image's size; an instance past
 * {@linkcode KEEP_DECODER_BYTES} is dropped instead, and so is one that trapped.
 */
interface Slot {
  wasm: JpegExports;
  /** Decodes so far: an image whose pixels are output number `decodes` still has them here. */
  decodes: number;
  /** The last decode's image while its pixels are still only in this instance. */
  last?: WeakRef<DecodedImage>;
}

let shared: Slot | undefined;

/** An instance whose memory grew past this (a large full-size decode) is not kept. */
const KEEP_DECODER_BYTES = 32 << 20;

function sharedSlot(module: WebAssembly.Module): Slot {
  shared ??= {
    wasm: new WebAssembly.Instance(module, {}).exports as unknown as JpegExports,
    decodes: 0,
  };
  return shared;
}

/**
 * Whether a decode will stay within {@linkcode KEEP_DECODER_BYTES}, so it may use the shared
 * instance: a larger one (a 12-megapixel photo at full size needs about 70 MB) gets a throwaway
 * instance instead of growing and then evicting the warm one, whose next decode would pay
 * for paging in a fresh instance. By the header: the RGBA output and the planes (at most
 * 8 bytes per output pixel), and a progressive image's coefficients (2 bytes per stored
 * pixel and component, 6 bytes allowing for 4:4:4 or 4:2:0).
 */
function fitsShared(bytes: Uint8Array, scale: JpegScale): boolean {
  const size = readDimensions(bytes, "jpeg");
  if (!size) return true; // the decoder reports what is wrong with it
  const pixels = Math.ceil(size.width / scale) * Math.ceil(size.height / scale);
  const coefs = 6 * size.width * size.height;
  return bytes.length + 8 * pixels + (isProgressive(bytes) ? coefs : 0) <= KEEP_DECODER_BYTES;
}

/** Whether the JPEG's frame is progressive (an SOF2 marker before the first scan). */
function isProgressive(bytes: Uint8Array): boolean {
  for (let i = 2; i + 3 < bytes.length;) {
    if (bytes[i] !== 0xff) return false;
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    if (marker === 0xc2) return true;
    if (
      marker === 0xda ||
      (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc)
    ) return false;
    i += 2 + ((bytes[i + 2] << 8) | bytes[i + 3]);
  }
  return false;
}

/** Runs `use` on the shared instance, dropping the instance if it throws (a trap) or grew too large. */
function withSlot<T>(slot: Slot, use: (slot: Slot) => T): T {
  try {
    return use(slot);
  } catch (e) {
    // A refused JPEG leaves the instance sound; anything else (a trap) does not.
    if (shared === slot && !(e instanceof JpegFastError)) shared = undefined;
    throw e;
  } finally {
    if (shared === slot && slot.wasm.memory.buffer.byteLength > KEEP_DECODER_BYTES) {
      shared = undefined;
    }
  }
}

interface JpegExports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  input(bytes: number): number;
  jpeg_decode(ptr: number, len: number, denom: number): number;
  jpeg_work(which: number): number;
  region(bytes: number): number;
  resample(len: number, source: number): number;
}

/**
 * Where a decoded image's pixels still lie: output `decode` of `slot`, at `at` (after
 * the 8-byte size header). Images in here have not been copied out of the instance.
 */
const resident = new WeakMap<DecodedImage, { slot: Slot; decode: number; at: number }>();

/**
 * A decoded image whose `data` is copied out of the instance only when something reads
 * it: preprocessing resamples the pixels where they lie (`resampleResidentWasm`), so the
 * usual path never copies them (1.2 MB for a 640x480 photo, into memory that has to be
 * paged in). The copy is made, at the latest, before the instance's next decode
 * overwrites them (`Slot.last`). `data` is an own enumerable property, so spreading or
 * comparing the image copies the pixels too.
 */
function residentImage(slot: Slot, at: number, width: number, height: number): DecodedImage {
  let data: Uint8Array | undefined;
  const img = { width, height } as DecodedImage;
  Object.defineProperty(img, "data", {
    enumerable: true,
    configurable: true,
    get(): Uint8Array {
      if (!data) {
        const from = at + 8;
        data = new Uint8Array(slot.wasm.memory.buffer.slice(from, from + width * height * 4));
        resident.delete(img);
      }
      return data;
    },
    set(value: Uint8Array) {
      data = value;
      resident.delete(img);
    },
  });
  resident.set(img, { slot, decode: slot.decodes, at });
  slot.last = new WeakRef(img);
  return img;
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
 * full-size pixels it covers (chroma upsampled by repetition where needed). The pixels are
 * copied out of the decoder's instance when `data` is first read (preprocessing does not
 * read it: it resamples them in place).
 *
 * @throws {JpegFastError} With `reason` `truncated` or `corrupt` for a broken stream,
 * `too_many_scans` or `over_budget` for one over the work limits, `unsupported` for JPEGs it leaves to a full decoder (arithmetic coding, lossless,
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
  const slot = fitsShared(bytes, scale)
    ? sharedSlot(module)
    : { wasm: new WebAssembly.Instance(module, {}).exports as unknown as JpegExports, decodes: 0 };
  const img = withSlot(slot, ({ wasm }) => {
    // The previous image, if still in use, takes its pixels out before they are overwritten.
    slot.last?.deref()?.data;
    slot.last = undefined;
    const ptr = wasm.input(bytes.length);
    if (ptr === 0) throw new JpegFastError("out_of_memory");
    new Uint8Array(wasm.memory.buffer, ptr, bytes.length).set(bytes);
    const result = wasm.jpeg_decode(ptr, bytes.length, scale);
    slot.decodes++;
    lastWork = {
      scans: wasm.jpeg_work(0),
      blockVisits: wasm.jpeg_work(1),
      blockBudget: wasm.jpeg_work(2),
    };
    if (result <= 0) throw new JpegFastError(REASONS[-result] ?? "corrupt");
    const view = new DataView(wasm.memory.buffer, result, 8);
    const width = view.getUint32(0, true);
    const height = view.getUint32(4, true);
    if (slot === shared && wasm.memory.buffer.byteLength <= KEEP_DECODER_BYTES) {
      return residentImage(slot, result, width, height);
    }
    // An instance that is not kept (a throwaway one, or grown too large): the pixels are
    // copied out now, and its memory goes.
    const from = result + 8;
    const data = new Uint8Array(wasm.memory.buffer.slice(from, from + width * height * 4));
    return { width, height, data } as DecodedImage;
  });
  if (scale !== 1) {
    const full = readJpegSize(bytes);
    img.reduction = { ...full, scale, left: 0, top: 0 };
  }
  return img;
}

/** Taps of one axis, as in `_filter.ts` (repeated here so this module imports no resize code). */
interface AxisTaps {
  start: Int32Array;
  count: Int32Array;
  weights: Float64Array;
  stride: number;
}

/** Resample regions past this get a throwaway instance, so a huge image's memory goes away. */
const KEEP_REGION_BYTES = 16 << 20;

// The region header: u32 [width, rows, row0, out_w, x_stride, out_h, y_stride, src_at, x_at, y_at].
const HEADER = 40;

/**
 * Writes the resample region (header and taps, and with `src` the RGBA rows) into the
 * instance, runs `resample` and copies the result out; `undefined` when the module
 * refuses the taps (or memory cannot grow).
 */
function runResample(
  wasm: JpegExports,
  width: number,
  [rowLo, rowHi]: [number, number],
  xt: AxisTaps,
  yt: AxisTaps,
  src: Uint8Array | undefined,
): Float32Array | undefined {
  const outW = xt.start.length, outH = yt.start.length;
  const rows = rowHi - rowLo;
  const xAt = HEADER, yAt = xAt + outW * 8 + xt.weights.byteLength;
  const srcAt = yAt + outH * 8 + yt.weights.byteLength;
  const len = src ? srcAt + rows * width * 4 : srcAt;
  const at = wasm.region(len);
  if (at === 0) return undefined;
  const mem = new Uint8Array(wasm.memory.buffer, at, len);
  const words = [width, rows, rowLo, outW, xt.stride, outH, yt.stride, srcAt, xAt, yAt];
  const view = new DataView(mem.buffer, at, HEADER);
  words.forEach((w, i) => view.setUint32(4 * i, w, true));
  const put = (to: number, a: Int32Array | Float64Array) =>
    mem.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), to);
  put(xAt, xt.start), put(xAt + 4 * outW, xt.count), put(xAt + 8 * outW, xt.weights);
  put(yAt, yt.start), put(yAt + 4 * outH, yt.count), put(yAt + 8 * outH, yt.weights);
  if (src) mem.set(src.subarray(rowLo * width * 4, rowHi * width * 4), srcAt);
  const out = wasm.resample(len, src ? 0 : 1);
  if (out <= 0) return undefined;
  // A copy (the instance reuses the result's memory), into a reused array when it is small.
  const n = outH * outW * 3;
  const result = n <= REUSE_RESULT_FLOATS ? resultArray(n) : new Float32Array(n);
  result.set(new Float32Array(wasm.memory.buffer, out, n));
  return result;
}

/**
 * Results up to this many floats (4 MB, a 224x224 input's is 0.6 MB) go into one reused
 * array: a fresh 0.6 MB array per image cost 0.3-1.7 ms of page faults on the bench
 * machine, more than the resample's vertical pass.
 */
const REUSE_RESULT_FLOATS = 1 << 20;
let results = new Float32Array(0);

function resultArray(n: number): Float32Array {
  if (results.length < n) results = new Float32Array(Math.min(REUSE_RESULT_FLOATS, n * 2));
  return results.subarray(0, n);
}

/**
 * The decoder module's `resample` export: the same antialiased resample as
 * `resampleRgbReference` in `_resample.ts`, bit for bit, run in WebAssembly (SIMD128) in
 * the long-lived instance. Only source rows `rowLo .. rowHi - 1` are copied in; every row
 * `yt` reads must lie there.
 *
 * src: RGBA u8 [H, width, 4] -> RGB f32 [yt outputs, xt outputs, 3], or `undefined` when
 * the module is not loaded (yet) or refuses the taps, so the caller runs the reference.
 * A result of up to 4 MB shares its memory with the next call's: read it (or copy it)
 * before resampling again.
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
  rows: [number, number],
  xt: AxisTaps,
  yt: AxisTaps,
): Float32Array | undefined {
  const module = jpegModuleSync();
  if (!module) return undefined;
  const bytes = HEADER + (xt.weights.byteLength + yt.weights.byteLength) * 2 +
    (rows[1] - rows[0]) * width * 4;
  if (bytes > KEEP_REGION_BYTES) {
    const wasm = new WebAssembly.Instance(module, {}).exports as unknown as JpegExports;
    return runResample(wasm, width, rows, xt, yt, src);
  }
  const slot = sharedSlot(module);
  return withSlot(slot, ({ wasm }) => runResample(wasm, width, rows, xt, yt, src));
}

/**
 * {@linkcode resampleRgbWasm} for an image from {@linkcode decodeJpegFast} whose pixels are
 * still in the decoder's instance: resampled where they lie, never copied out and back
 * in. `undefined` when `img` is not such an image (or the module refuses the taps): the
 * caller then resamples `img.data`.
 *
 * img: RGBA [H, W, 4] -> RGB f32 [yt outputs, xt outputs, 3]; like `resampleRgbWasm`'s,
 * the result may share its memory with the next call's.
 *
 * @example
 * ```ts
 * import { decodeJpegFast, resampleResidentWasm } from "./jpeg_fast.ts";
 *
 * const img = await decodeJpegFast(await Deno.readFile("tests/fixtures/chelsea.jpg"));
 * const one = (start: number) => ({
 *   start: new Int32Array([start]),
 *   count: new Int32Array([1]),
 *   weights: new Float64Array([1]),
 *   stride: 1,
 * });
 * resampleResidentWasm(img, [0, 1], one(0), one(0)); // the top-left pixel's RGB
 * ```
 */
export function resampleResidentWasm(
  img: DecodedImage,
  rows: [number, number],
  xt: AxisTaps,
  yt: AxisTaps,
): Float32Array | undefined {
  const where = resident.get(img);
  if (!where || where.slot.decodes !== where.decode || shared !== where.slot) return undefined;
  return withSlot(where.slot, ({ wasm }) => runResample(wasm, img.width, rows, xt, yt, undefined));
}

/**
 * Whether `img`'s pixels are still only in the decoder's instance (`data` not read yet).
 *
 * @example
 * ```ts
 * import { _isResident, decodeJpegFast } from "./jpeg_fast.ts";
 *
 * const img = await decodeJpegFast(await Deno.readFile("tests/fixtures/chelsea.jpg"));
 * _isResident(img); // true
 * img.data.length; // copies the pixels out
 * _isResident(img); // false
 * ```
 */
export function _isResident(img: DecodedImage): boolean {
  return resident.has(img);
}
