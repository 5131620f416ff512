/**
 * WebP: the header read here (size, animation, alpha) before anything is
 * decoded, the pixels by libwebp's decoder compiled to WebAssembly
 * (`@jsquash/webp` 1.5.0, Squoosh's build of libwebp 1.0.2). Lossy (VP8),
 * lossless (VP8L) and extended (VP8X, with alpha) files decode directly; an
 * animation decodes its first frame, placed on the canvas like a GIF's.
 *
 * The .wasm is read from the installed package and compiled once, never
 * fetched from a URL; each decode gets a fresh instance, so a trap or a grown
 * memory does not outlive the call. Needs `--allow-read`.
 *
 * @module
 */
import { createRequire } from "node:module";
import { ClassifierError } from "../errors.ts";
import type { DecodedImage } from "./decoded_image.ts";
import { _isWebp } from "./sniff.ts";

/** What a WebP's RIFF header and first chunk declare. */
export interface WebpHeader {
  /** Canvas size. */
  width: number;
  height: number;
  animated: boolean;
}

interface WebpModule {
  decode(data: Uint8Array): { width: number; height: number; data: Uint8ClampedArray } | null;
}
type Factory = (options: {
  noInitialRun: boolean;
  instantiateWasm: (
    imports: WebAssembly.Imports,
    done: (instance: WebAssembly.Instance) => void,
  ) => WebAssembly.Exports;
}) => Promise<WebpModule>;

const fail = (reason: string) =>
  new ClassifierError("decode_failed", `Cannot decode image: the WebP ${reason}`);

const ascii = (b: Uint8Array, at: number) =>
  String.fromCharCode(b[at], b[at + 1], b[at + 2], b[at + 3]);
const u24 = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8) | (b[at + 2] << 16);
const u32 = (b: Uint8Array, at: number) => u24(b, at) + b[at + 3] * 2 ** 24;

/**
 * Reads the canvas size from the first chunk (`VP8 `, `VP8L` or `VP8X`), or
 * `null` when the header is too short or malformed to say.
 *
 * @example
 * ```ts
 * import { readWebpHeader } from "./webp.ts";
 *
 * readWebpHeader(await Deno.readFile("tests/fixtures/fmt_webp_lossy.webp"));
 * // { width: 121, height: 81, animated: false }
 * ```
 */
export function readWebpHeader(bytes: Uint8Array): WebpHeader | null {
  if (!_isWebp(bytes) || bytes.length < 30) return null;
  const p = 20; // first chunk's payload
  switch (ascii(bytes, 12)) {
    case "VP8 ": // frame tag (3), start code 9d 01 2a, 14-bit width and height
      if (bytes[p + 3] !== 0x9d || bytes[p + 4] !== 0x01 || bytes[p + 5] !== 0x2a) return null;
      return {
        width: (bytes[p + 6] | (bytes[p + 7] << 8)) & 0x3fff,
        height: (bytes[p + 8] | (bytes[p + 9] << 8)) & 0x3fff,
        animated: false,
      };
    case "VP8L": { // signature 0x2f, then 14 bits width-1 and 14 bits height-1
      if (bytes[p] !== 0x2f) return null;
      const bits = u32(bytes, p + 1);
      return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1, animated: false };
    }
    case "VP8X": // flags, 3 reserved, 24-bit canvas width-1 and height-1
      return {
        width: u24(bytes, p + 4) + 1,
        height: u24(bytes, p + 7) + 1,
        animated: (bytes[p] & 0x02) !== 0,
      };
    default:
      return null;
  }
}

let compiled: Promise<WebAssembly.Module> | undefined;

function wasmModule(): Promise<WebAssembly.Module> {
  compiled ??= (async () => {
    const path = createRequire(import.meta.url).resolve("@jsquash/webp/codec/dec/webp_dec.wasm");
    return await WebAssembly.compile(await Deno.readFile(path));
  })();
  return compiled;
}

async function libwebpDecode(bytes: Uint8Array): Promise<DecodedImage | null> {
  const module = await wasmModule();
  // libwebp's glue is imported on the first WebP, not at start-up.
  const { default: webpDecoder } = await import("@jsquash/webp/codec/dec/webp_dec.js");
  const decoder = await (webpDecoder as unknown as Factory)({
    noInitialRun: true,
    instantiateWasm(imports, done) {
      const instance = new WebAssembly.Instance(module, imports);
      done(instance);
      return instance.exports;
    },
  });
  const result = decoder.decode(bytes);
  if (!result) return null;
  const { width, height, data } = result;
  return { width, height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

interface Chunk {
  type: string;
  /** Payload start and end (exclusive). */
  start: number;
  end: number;
}

function chunks(bytes: Uint8Array, from: number, to: number): Chunk[] {
  const list: Chunk[] = [];
  for (let at = from; at + 8 <= to;) {
    const size = u32(bytes, at + 4);
    const start = at + 8;
    if (start + size > to) throw fail("data is truncated");
    list.push({ type: ascii(bytes, at), start, end: start + size });
    at = start + size + (size % 2);
  }
  return list;
}

function chunk(type: string, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + payload.length + (payload.length % 2));
  out.set(new TextEncoder().encode(type));
  new DataView(out.buffer).setUint32(4, payload.length, true);
  out.set(payload, 8);
  return out;
}

// An animation's first ANMF frame, rewrapped as a still WebP (VP8X + ALPH + VP8 when it has
// alpha, else its one VP8/VP8L chunk), with its offset and size on the canvas.
function firstFrame(bytes: Uint8Array, header: WebpHeader) {
  const end = Math.min(bytes.length, 8 + u32(bytes, 4));
  const anmf = chunks(bytes, 12, end).find((c) => c.type === "ANMF");
  if (!anmf || anmf.end - anmf.start < 16) throw fail("animation has no frames");
  const p = anmf.start;
  const x = u24(bytes, p) * 2, y = u24(bytes, p + 3) * 2;
  const width = u24(bytes, p + 6) + 1, height = u24(bytes, p + 9) + 1;
  if (x + width > header.width || y + height > header.height) {
    throw fail("animation has a frame outside its canvas");
  }
  const parts = chunks(bytes, p + 16, anmf.end);
  const image = parts.find((c) => c.type === "VP8 " || c.type === "VP8L");
  if (!image) throw fail("animation frame has no image data");
  const alph = parts.find((c) => c.type === "ALPH");
  const body: Uint8Array[] = [];
  if (alph && image.type === "VP8 ") {
    const vp8x = new Uint8Array(10);
    vp8x[0] = 0x10; // alpha
    vp8x.set([(width - 1) & 255, ((width - 1) >> 8) & 255, (width - 1) >> 16], 4);
    vp8x.set([(height - 1) & 255, ((height - 1) >> 8) & 255, (height - 1) >> 16], 7);
    body.push(chunk("VP8X", vp8x), chunk("ALPH", bytes.subarray(alph.start, alph.end)));
  }
  body.push(chunk(image.type, bytes.subarray(image.start, image.end)));
  const size = body.reduce((n, b) => n + b.length, 4);
  const still = new Uint8Array(8 + size);
  still.set(new TextEncoder().encode("RIFF"));
  new DataView(still.buffer).setUint32(4, size, true);
  still.set(new TextEncoder().encode("WEBP"), 8);
  let at = 12;
  for (const b of body) {
    still.set(b, at);
    at += b.length;
  }
  return { still, x, y, width, height };
}

/**
 * Decodes a WebP into RGBA (an animation: its first frame on a transparent
 * canvas). Call it only once the header size has passed the pixel limit.
 *
 * @throws {ClassifierError} `decode_failed` when the data is truncated or corrupt.
 *
 * @example
 * ```ts
 * import { decodeWebp } from "./webp.ts";
 *
 * const image = await decodeWebp(await Deno.readFile("tests/fixtures/fmt_webp_lossy.webp"));
 * [image.width, image.height]; // [121, 81]
 * ```
 */
export async function decodeWebp(bytes: Uint8Array): Promise<DecodedImage> {
  const header = readWebpHeader(bytes);
  if (!header) throw fail("header is truncated or malformed");
  if (!header.animated) {
    const image = await libwebpDecode(bytes);
    if (!image) {
      throw fail(8 + u32(bytes, 4) > bytes.length ? "data is truncated" : "data is corrupt");
    }
    return image;
  }
  const frame = firstFrame(bytes, header);
  const image = await libwebpDecode(frame.still);
  if (!image || image.width !== frame.width || image.height !== frame.height) {
    throw fail("animation's first frame is corrupt");
  }
  const { width, height } = header;
  const data = new Uint8Array(width * height * 4);
  for (let row = 0; row < frame.height; row++) {
    const from = row * frame.width * 4;
    data.set(
      image.data.subarray(from, from + frame.width * 4),
      ((frame.y + row) * width + frame.x) * 4,
    );
  }
  return { width, height, data };
}
