/**
 * The hostile image corpus of issue 19, made on the spot (deterministic, no files): many-scan
 * progressive JPEGs, refinement scans without their first pass, 16-bit and interlaced PNGs at
 * the memory budget, and headers that lie about the size. Every generator takes the size as a
 * parameter: the tests use small ones (`corpus_images_test.ts`), `deno task fuzz --images`
 * the full-size ones ({@linkcode fullSizeImageCorpus}).
 *
 * The JPEGs are written bit by bit here: one greyscale component, quantizer 1, a DC table
 * whose only code ("0") means "no change", and an AC table of end-of-band runs, so a scan
 * that covers a whole 2000x2000 image costs a few bytes.
 *
 * @module
 */
import { deflateSync } from "node:zlib";

/** Appends bits MSB first, stuffing a 00 after every FF byte (T.81 F.1.2.3). */
class BitWriter {
  readonly bytes: number[] = [];
  #acc = 0;
  #n = 0;

  /** Writes the low `n` bits of `value`. */
  put(value: number, n: number): void {
    for (let i = n - 1; i >= 0; i--) {
      this.#acc = (this.#acc << 1) | ((value >>> i) & 1);
      if (++this.#n === 8) this.#flushByte();
    }
  }

  #flushByte(): void {
    this.bytes.push(this.#acc);
    if (this.#acc === 0xff) this.bytes.push(0);
    this.#acc = 0;
    this.#n = 0;
  }

  /** Pads the last byte with 1 bits and returns the stuffed bytes. */
  finish(): number[] {
    while (this.#n !== 0) this.put(1, 1);
    return this.bytes;
  }
}

function segment(marker: number, payload: number[]): number[] {
  const len = payload.length + 2;
  return [0xff, marker, len >> 8, len & 0xff, ...payload];
}

// DC table 0: one code "0" for category 0 (difference 0). AC table 0: EOBRUN symbols
// r << 4 for r = 0..14, all 4-bit codes (0000..1110), so no code is all ones.
const DC_TABLE = [0x00, 1, ...new Array(15).fill(0), 0x00];
const AC_SYMBOLS = Array.from({ length: 15 }, (_, r) => r << 4);
const AC_TABLE = [0x10, 0, 0, 0, 15, ...new Array(12).fill(0), ...AC_SYMBOLS];

/** Writes end-of-band runs that cover `blocks` blocks (each run at most 32,767). */
function eobRuns(w: BitWriter, blocks: number): void {
  for (let left = blocks; left > 0;) {
    const run = Math.min(left, 0x7fff);
    const r = 31 - Math.clz32(run); // run = 2^r + extra bits
    w.put(r, 4); // symbol r << 4 has code r (4 bits)
    w.put(run - (1 << r), r);
    left -= run;
  }
}

/** A scan of component `id` (1 by default; a DC first pass covers them all). */
interface ScanSpec {
  ss: number;
  se: number;
  ah: number;
  al: number;
  id?: number;
}

/** A frame's components: id and sampling factors; every component uses the same tables. */
type Frame = { id: number; h: number; v: number }[];

const GREY: Frame = [{ id: 1, h: 1, v: 1 }];

/**
 * Y sampled 4x2 and two chroma components 1x1: each MCU holds 8 luma blocks and one block
 * of each chroma component, so a chroma scan visits a tenth of the frame's blocks.
 */
const WIDE_LUMA: Frame = [{ id: 1, h: 4, v: 2 }, { id: 2, h: 1, v: 1 }, { id: 3, h: 1, v: 1 }];

function sos(spec: ScanSpec, frame: Frame): number[] {
  const ids = spec.ss === 0 ? frame.map((c) => c.id) : [spec.id ?? 1];
  const members = ids.flatMap((id) => [id, 0x00]);
  return segment(0xda, [ids.length, ...members, spec.ss, spec.se, (spec.ah << 4) | spec.al]);
}

// Blocks a scan codes: every component's MCU blocks for an interleaved DC scan (or the one
// component of a single-component frame), a component's own block grid otherwise.
function scanBlocks(spec: ScanSpec, frame: Frame, width: number, height: number): number {
  const hmax = Math.max(...frame.map((c) => c.h)), vmax = Math.max(...frame.map((c) => c.v));
  const mcus = Math.ceil(width / (8 * hmax)) * Math.ceil(height / (8 * vmax));
  if (spec.ss === 0 && frame.length > 1) return mcus * frame.reduce((n, c) => n + c.h * c.v, 0);
  const c = frame.find((c) => c.id === (spec.id ?? 1))!;
  const own = (size: number, f: number, max: number) => Math.ceil(Math.ceil(size * f / max) / 8);
  return own(width, c.h, hmax) * own(height, c.v, vmax);
}

// The scan's entropy-coded data for `blocks` blocks: a DC difference of 0 (code "0") or a
// refinement bit 0 per block for DC scans, one end-of-band run over everything for AC
// scans (nothing to correct: the AC coefficients are all zero).
function scanData(spec: ScanSpec, blocks: number): number[] {
  const w = new BitWriter();
  if (spec.ss === 0) {
    for (let i = 0; i < blocks; i++) w.put(0, 1);
  } else {
    eobRuns(w, blocks);
  }
  return w.finish();
}

/** A progressive JPEG of `width` x `height` made of `scans` (greyscale by default). */
function progressiveJpeg(
  width: number,
  height: number,
  scans: ScanSpec[],
  frame: Frame = GREY,
): Uint8Array {
  const out: number[] = [0xff, 0xd8];
  out.push(...segment(0xdb, [0x00, ...new Array(64).fill(1)]));
  const comps = frame.flatMap((c) => [c.id, (c.h << 4) | c.v, 0]);
  const size = [height >> 8, height & 0xff, width >> 8, width & 0xff];
  out.push(...segment(0xc2, [8, ...size, frame.length, ...comps]));
  out.push(...segment(0xc4, DC_TABLE), ...segment(0xc4, AC_TABLE));
  for (const spec of scans) {
    const data = scanData(spec, scanBlocks(spec, frame, width, height));
    for (const b of sos(spec, frame)) out.push(b);
    for (const b of data) out.push(b);
  }
  out.push(0xff, 0xd9);
  return new Uint8Array(out);
}

// AC scans i = 0.. of a valid progression for component `id`: one coefficient each, first
// passes at Al 13 for coefficients 1..63, then refinements down to Al 0 (at most 882).
function acProgression(count: number, id: number): ScanSpec[] {
  if (count > 63 * 14) throw new RangeError(`At most ${63 * 14} AC scans, not ${count}`);
  return Array.from({ length: count }, (_, i) => {
    const k = 1 + (i % 63), pass = Math.floor(i / 63);
    return { ss: k, se: k, ah: pass === 0 ? 0 : 14 - pass, al: 13 - pass, id };
  });
}

/** Size of a generated image. */
export interface ImageSize {
  width: number;
  height: number;
}

/**
 * The attack: a DC scan, then `refinements` AC refinement scans (1-63, Ah 1, Al 0)
 * whose end-of-band runs cover the image, none after a first pass. 2000x2000 with 1,000
 * refinements is 30 KB and took 6.6 s to decode before the budgets.
 */
export function refinementWithoutFirstPassJpeg(size: ImageSize, refinements: number): Uint8Array {
  const scans: ScanSpec[] = [{ ss: 0, se: 0, ah: 0, al: 0 }];
  for (let i = 0; i < refinements; i++) scans.push({ ss: 1, se: 63, ah: 1, al: 0 });
  return progressiveJpeg(size.width, size.height, scans);
}

/**
 * The most scans T.81 allows for one greyscale component (at most 882 AC scans): a DC scan,
 * then AC scans of one coefficient each, first passes at Al 13 for coefficients 1..63, then
 * refinements down to Al 0, in that order, each an end-of-band run over the image. A valid
 * progression, so only the scan cap and the block-visit budget stop it.
 */
export function manyScanJpeg(size: ImageSize, acScans: number): Uint8Array {
  const scans = [{ ss: 0, se: 0, ah: 0, al: 0 }, ...acProgression(acScans, 1)];
  return progressiveJpeg(size.width, size.height, scans);
}

/**
 * Many cheap scans: a colour JPEG whose luma is sampled 4x2, a DC scan, then `acScans`
 * valid AC scans of one chroma component, each visiting a tenth of the frame's blocks, so
 * the scan cap is reached before the block-visit budget.
 */
export function manyChromaScanJpeg(size: ImageSize, acScans: number): Uint8Array {
  const scans = [{ ss: 0, se: 0, ah: 0, al: 0 }, ...acProgression(acScans, 2)];
  return progressiveJpeg(size.width, size.height, scans, WIDE_LUMA);
}

/**
 * A progressive JPEG with libjpeg's standard greyscale script (6 scans: DC Al 1, AC 1-5 and
 * 6-63 Al 2, AC refine 2->1, DC refine, AC refine 1->0): what a real encoder writes, which
 * the budgets must let through.
 */
export function standardProgressiveJpeg(size: ImageSize): Uint8Array {
  return progressiveJpeg(size.width, size.height, [
    { ss: 0, se: 0, ah: 0, al: 1 },
    { ss: 1, se: 5, ah: 0, al: 2 },
    { ss: 6, se: 63, ah: 0, al: 2 },
    { ss: 1, se: 63, ah: 2, al: 1 },
    { ss: 0, se: 0, ah: 1, al: 0 },
    { ss: 1, se: 63, ah: 1, al: 0 },
  ]);
}

/**
 * A progressive JPEG whose SOF declares `size` but whose single DC scan covers only 1x1
 * blocks' worth of data: the header lies about the image it holds.
 */
export function lyingSofJpeg(size: ImageSize): Uint8Array {
  const real = progressiveJpeg(8, 8, [{ ss: 0, se: 0, ah: 0, al: 0 }]);
  const out = real.slice();
  const sof = out.findIndex((b, i) => b === 0xff && out[i + 1] === 0xc2);
  out.set([size.height >> 8, size.height & 0xff, size.width >> 8, size.width & 0xff], sof + 5);
  return out;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** What {@linkcode png} writes. */
export interface PngSpec extends ImageSize {
  /** 8 or 16 bits per sample. */
  bitDepth: 8 | 16;
  /** 0 grey, 2 RGB, 4 grey + alpha, 6 RGBA. */
  colorType: 0 | 2 | 4 | 6;
  /** Adam7 interlacing. */
  interlaced?: boolean;
  /** Only the first `rows` scanlines' worth of data (a lying IHDR); all rows by default. */
  rows?: number;
  /**
   * The filter type of every row (default 0, none). The samples stay zero whatever it is, but
   * a decoder must still run the filter: 4 (Paeth) costs the most.
   */
  filter?: 0 | 1 | 2 | 3 | 4;
}

const CHANNELS = { 0: 1, 2: 3, 4: 2, 6: 4 } as const;

// Adam7 passes: x0, y0, dx, dy.
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [
  0,
  1,
  1,
  2,
]];

/** The filtered scanlines (filter byte + zero samples) for the spec. */
function scanlines(spec: PngSpec): Uint8Array {
  const bpp = CHANNELS[spec.colorType] * spec.bitDepth / 8;
  const passes = spec.interlaced ? ADAM7 : [[0, 0, 1, 1]];
  const rows: [number, number][] = passes.map(([x0, y0, dx, dy]) => {
    const w = Math.ceil((spec.width - x0) / dx);
    const h = Math.ceil(((spec.rows ?? spec.height) - y0) / dy);
    return [w > 0 && h > 0 ? h : 0, 1 + w * bpp];
  });
  const raw = new Uint8Array(rows.reduce((sum, [h, len]) => sum + h * len, 0));
  let at = 0;
  for (const [h, len] of rows) {
    for (let y = 0; y < h; y++, at += len) raw[at] = spec.filter ?? 0;
  }
  return raw;
}

/**
 * A PNG of the spec whose samples are all zero (filter type `spec.filter`), compressed at zlib's level
 * 9 (zeros deflate about 1,000:1, so a 6300x6300 16-bit RGBA image is about 300 KB).
 */
export function png(spec: PngSpec): Uint8Array {
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, spec.width);
  view.setUint32(4, spec.height);
  ihdr.set([spec.bitDepth, spec.colorType, 0, 0, spec.interlaced ? 1 : 0], 8);
  const idat = deflateSync(scanlines(spec), { level: 9 });
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", new Uint8Array(idat.buffer, idat.byteOffset, idat.byteLength)),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

/** One case of the corpus: a name and its bytes. */
export interface CorpusImage {
  name: string;
  bytes: Uint8Array;
}

/**
 * The corpus at full size, as the issue measured it (for `deno task fuzz --images`): under
 * the server's default 40 MP limit and 160 MB byte budget every case must be answered within
 * a second, refused with a 4xx or (the PNGs just within the budgets) classified with a 200.
 */
export function fullSizeImageCorpus(): CorpusImage[] {
  const big = { width: 2000, height: 2000 };
  return [
    {
      name: "refinement without first pass, 1000 scans",
      bytes: refinementWithoutFirstPassJpeg(big, 1000),
    },
    { name: "valid progression, 882 AC scans", bytes: manyScanJpeg(big, 882) },
    { name: "valid progression, 60 AC scans", bytes: manyScanJpeg(big, 60) },
    {
      name: "100 scans on 7000x5700",
      bytes: refinementWithoutFirstPassJpeg({ width: 7000, height: 5700 }, 100),
    },
    { name: "lying SOF 7000x5700", bytes: lyingSofJpeg({ width: 7000, height: 5700 }) },
    {
      name: "16-bit RGBA PNG 6300x6300",
      bytes: png({ width: 6300, height: 6300, bitDepth: 16, colorType: 6 }),
    },
    {
      name: "interlaced 16-bit RGBA PNG 4500x4500",
      bytes: png({ width: 4500, height: 4500, bitDepth: 16, colorType: 6, interlaced: true }),
    },
    {
      name: "lying IHDR 6000x6000, one row of data",
      bytes: png({ width: 6000, height: 6000, bitDepth: 8, colorType: 6, rows: 1 }),
    },
    // Just within the budgets (4470 x 4470 x 8 bytes = 159.8 MB of 160 MB; 39.9 of 40 MP),
    // every row Paeth-filtered: the most a PNG can make the decoder do.
    {
      name: "16-bit RGBA PNG 4470x4470, Paeth rows",
      bytes: png({ width: 4470, height: 4470, bitDepth: 16, colorType: 6, filter: 4 }),
    },
    {
      name: "interlaced 16-bit RGBA PNG 4470x4470, Paeth rows",
      bytes: png({
        width: 4470,
        height: 4470,
        bitDepth: 16,
        colorType: 6,
        interlaced: true,
        filter: 4,
      }),
    },
    {
      name: "8-bit RGBA PNG 7740x5160, Paeth rows",
      bytes: png({ width: 7740, height: 5160, bitDepth: 8, colorType: 6, filter: 4 }),
    },
  ];
}
