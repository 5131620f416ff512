/**
 * The two JPEG decoders of bench/decode_compare.ts behind one call: ours
 * (wasm/decode/jpeg_decode.wasm, or an earlier build of it) and jpeg-decoder 0.2.6
 * (bench/decode_crate). One long-lived instance each, input written into the instance's
 * reused buffer, RGBA out; the crate gets `Decoder::scale` with the size ours makes at
 * 1/`scale`, so both pick the same DCT scale.
 *
 * @module
 */

/** Which decoder. */
export type DecoderName = "ours" | "crate";

/** What the two are, for the results file. */
export const DECODERS: Record<DecoderName, string> = {
  ours: "wasm/decode (zero-dependency Rust, SIMD128)",
  crate: "jpeg-decoder 0.2.6 (Debian librust-jpeg-decoder-dev), no rayon, SIMD128 build flags",
};

/** One decode: the size and RGBA pixels (copied only when asked), or why it failed. */
export type Decoded =
  | { ok: true; width: number; height: number; rgba: Uint8Array }
  | { ok: false; error: string };

/** A loaded decoder. */
export interface Loaded {
  /** Decodes at 1/`scale`; `copy` false leaves the pixels in the instance (timing). */
  decode(bytes: Uint8Array, scale: number, copy?: boolean): Decoded;
}

interface Exports {
  memory: WebAssembly.Memory;
  input(bytes: number): number;
  jpeg_decode?(ptr: number, len: number, denom: number): number;
  decode?(len: number, wantW: number, wantH: number): number;
}

const OURS = new URL("../wasm/decode/jpeg_decode.wasm", import.meta.url).pathname;

// The SOF size, for the crate's requested size.
function sofSize(b: Uint8Array): [number, number] {
  for (let i = 2; i + 8 < b.length;) {
    const m = b[i + 1];
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      return [(b[i + 7] << 8) | b[i + 8], (b[i + 5] << 8) | b[i + 6]];
    }
    i += 2 + ((b[i + 2] << 8) | b[i + 3]);
  }
  return [0, 0];
}

/** Loads `which` from `wasm` (default: the committed build of ours). */
export async function loadDecoder(which: DecoderName, wasm = OURS): Promise<Loaded> {
  const module = await WebAssembly.compile(await Deno.readFile(wasm));
  const x = new WebAssembly.Instance(module, {}).exports as unknown as Exports;
  return {
    decode(bytes, scale, copy = true) {
      const ptr = x.input(bytes.length);
      new Uint8Array(x.memory.buffer, ptr, bytes.length).set(bytes);
      let at: number;
      if (which === "ours") {
        at = x.jpeg_decode!(ptr, bytes.length, scale);
      } else {
        const [w, h] = sofSize(bytes);
        at = x.decode!(bytes.length, Math.ceil(w / scale), Math.ceil(h / scale));
      }
      if (at <= 0) return { ok: false, error: `status ${at}` };
      const view = new DataView(x.memory.buffer, at, 8);
      const width = view.getUint32(0, true), height = view.getUint32(4, true);
      const rgba = copy
        ? new Uint8Array(x.memory.buffer.slice(at + 8, at + 8 + width * height * 4))
        : new Uint8Array(0);
      return { ok: true, width, height, rgba };
    },
  };
}
