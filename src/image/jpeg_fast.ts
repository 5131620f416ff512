/**
 * The fast JPEG path: wasm/decode/jpeg_decode.wasm (our zero-dependency Rust decoder)
 * decodes baseline and progressive JPEGs straight to 1/1, 1/2, 1/4 or 1/8 of their size
 * by running a reduced inverse DCT on each 8x8 block, so a 12-megapixel photo headed
 * for a 224x224 model input is decoded at 500x375 without ever existing at full size.
 *
 * The module is compiled once per process from a URL beside this file (`fetch` for
 * http(s), the file system for file: URLs), and each decode gets a fresh instance, so
 * one image's memory goes away with it and a trap cannot affect the next decode.
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

function jpegModule(): Promise<WebAssembly.Module> {
  // One compile per process; a failure is not cached, so a later call can retry.
  compiled ??= readModule(WASM_URL).then((b) => WebAssembly.compile(b)).catch((e) => {
    compiled = undefined;
    throw e;
  });
  return compiled;
}

interface JpegExports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  jpeg_decode(ptr: number, len: number, denom: number): number;
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
  const instance = await WebAssembly.instantiate(await jpegModule(), {});
  const wasm = instance.exports as unknown as JpegExports;
  const ptr = wasm.alloc(bytes.length);
  if (ptr === 0) throw new JpegFastError("out_of_memory");
  new Uint8Array(wasm.memory.buffer, ptr, bytes.length).set(bytes);
  const result = wasm.jpeg_decode(ptr, bytes.length, scale);
  if (result <= 0) throw new JpegFastError(REASONS[-result] ?? "corrupt");
  const view = new DataView(wasm.memory.buffer, result, 8);
  const width = view.getUint32(0, true);
  const height = view.getUint32(4, true);
  // A view, not a copy: the instance's memory lives as long as the image does.
  const data = new Uint8Array(wasm.memory.buffer, result + 8, width * height * 4);
  if (scale === 1) return { width, height, data };
  const full = readJpegSize(bytes);
  return { width, height, data, reduction: { ...full, scale, left: 0, top: 0 } };
}
