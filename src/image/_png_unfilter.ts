/**
 * The streaming PNG decoder's scanlines, one at a time, their filters undone: in the decode
 * module (wasm/decode/src/png.rs: Paeth in SIMD, a pixel's bytes as the lanes of one vector,
 * 4-7x faster than TypeScript and as fast whatever the content), or by the plain TypeScript
 * `unfilter` (`_png_rows.ts`), the reference the module is tested against bit for bit and the
 * fallback when the module cannot be had.
 *
 * @module
 */
import { unfilter } from "./_png_rows.ts";
import { decodeModule } from "./jpeg_fast.ts";

/** Scanlines in, unfiltered scanlines out. */
export interface RowUnfilter {
  /** Where the next scanline's filtered bytes go (without the filter byte). */
  readonly raw: Uint8Array;
  /**
   * Undoes filter `type` of the first `n` bytes of `raw`, the line above being the last one
   * returned (zeros after {@linkcode RowUnfilter.reset}). Returns the unfiltered line, valid
   * until the next call. Throws on a filter type over 4.
   */
  unfilter(type: number, n: number): Uint8Array;
  /** The next line starts a pass: the line above it counts as zeros. */
  reset(): void;
}

/**
 * The TypeScript rows: `bpp` bytes a pixel, lines up to `maxBytes`, only every `step`-th
 * byte lane unfiltered (2 for 16-bit images whose low bytes are never read).
 */
export function scriptUnfilter(maxBytes: number, bpp: number, step: 1 | 2): RowUnfilter {
  let raw = new Uint8Array(maxBytes), prev = new Uint8Array(maxBytes);
  return {
    get raw() {
      return raw;
    },
    unfilter(type, n) {
      const line = raw.subarray(0, n);
      unfilter(type, line, prev.subarray(0, n), bpp, step);
      [raw, prev] = [prev, raw];
      return line;
    },
    reset: () => prev.fill(0),
  };
}

interface PngExports {
  memory: WebAssembly.Memory;
  png_rows(bytes: number): number;
  png_unfilter(
    kind: number,
    n: number,
    bpp: number,
    raw: number,
    prev: number,
    out: number,
  ): number;
}

// png.rs's SLACK: the SIMD Paeth reads and writes 8 bytes past a line.
const SLACK = 8;

/**
 * The module's rows, in a fresh instance of the decode module (its memory goes with the
 * decode); null when the module cannot be compiled or its memory cannot hold the rows.
 */
export async function wasmUnfilter(maxBytes: number, bpp: number): Promise<RowUnfilter | null> {
  let wasm: PngExports;
  try {
    wasm = new WebAssembly.Instance(await decodeModule(), {}).exports as unknown as PngExports;
  } catch {
    return null;
  }
  const at = wasm.png_rows(maxBytes);
  if (at === 0) return null;
  const slot = maxBytes + SLACK;
  // The slots' views, made again should the memory ever grow (png_unfilter never allocates).
  let views: Uint8Array[] = [];
  const view = (i: number) => {
    if (views[0]?.buffer !== wasm.memory.buffer) {
      views = [0, 1, 2].map((k) => new Uint8Array(wasm.memory.buffer, at + k * slot, slot));
    }
    return views[i];
  };
  let prev = 1, out = 2;
  view(prev).fill(0);
  return {
    get raw() {
      return view(0);
    },
    unfilter(type, n) {
      if (wasm.png_unfilter(type, n, bpp, 0, prev, out) !== 0) {
        throw new Error(`png: bad filter type ${type}`);
      }
      const line = view(out).subarray(0, n);
      [prev, out] = [out, prev];
      return line;
    },
    reset: () => view(prev).fill(0),
  };
}
