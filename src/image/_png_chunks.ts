/**
 * A PNG's chunks, read and checked the way imagescript's PNG decoder reads them (probed on it,
 * see tests/image/png_stream_test.ts): CRCs of the critical chunks (IHDR, PLTE, IDAT) must
 * match and ancillary ones are not checked, an unknown critical chunk is refused, and the
 * image data is the run of IDAT chunks: whatever follows it (IEND or not) is never read.
 *
 * @module
 */

/** What IHDR, PLTE and tRNS say, and the IDAT chunks' data (views into the file). */
export interface PngChunks {
  width: number;
  height: number;
  /** 1, 2, 4, 8 or 16. */
  bitDepth: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA. */
  colorType: number;
  interlaced: boolean;
  /** RGB triples (colour type 3; ignored otherwise). */
  palette: Uint8Array | null;
  /** tRNS payload as stored. */
  trns: Uint8Array | null;
  /** The zlib stream, chunk by chunk. */
  idat: Uint8Array[];
}

/** Samples per pixel of each colour type. */
export const PNG_CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

const DEPTHS: Readonly<Record<number, number[]>> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const CRC_TABLE = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

/** CRC-32 of `b[from, to)`, as a chunk's CRC covers its type and data. */
export function pngCrc(b: Uint8Array, from: number, to: number): number {
  let c = 0xffffffff;
  for (let i = from; i < to; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const u32 = (b: Uint8Array, at: number) =>
  ((b[at] << 24) >>> 0) + ((b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);

function fail(why: string): never {
  throw new Error(`png: ${why}`);
}

function readIhdr(data: Uint8Array): Omit<PngChunks, "palette" | "trns" | "idat"> {
  if (data.length !== 13) fail("IHDR is not 13 bytes");
  const [width, height] = [u32(data, 0), u32(data, 4)];
  const [bitDepth, colorType, compression, filter, interlace] = data.subarray(8);
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) {
    fail("bad size");
  }
  if (!DEPTHS[colorType]?.includes(bitDepth)) fail("bad bit depth or colour type");
  if (compression !== 0 || filter !== 0 || interlace > 1) fail("bad method");
  return { width, height, bitDepth, colorType, interlaced: interlace === 1 };
}

// tRNS as imagescript takes it: 2 bytes for grey, 6 for RGB, up to 256 for a palette.
function checkTrns(colorType: number, trns: Uint8Array): void {
  const ok = colorType === 0
    ? trns.length === 2
    : colorType === 2
    ? trns.length === 6
    : colorType === 3 && trns.length <= 256;
  if (!ok) fail("bad tRNS");
}

/**
 * Walks a PNG's chunks. Throws (an `Error` starting "png:") where imagescript's decoder
 * refuses the file: bad signature or IHDR, a critical chunk's CRC, an unknown critical
 * chunk or one cut short before the image data ends, no IDAT, no PLTE for colour type 3, a
 * tRNS that does not fit the colour type. IDAT chunks split by another chunk end the image
 * data early, which the inflate then finds.
 */
export function readPngChunks(b: Uint8Array): PngChunks {
  if (b.length < 8 || SIGNATURE.some((v, i) => b[i] !== v)) fail("bad signature");
  let header: ReturnType<typeof readIhdr> | null = null;
  let palette: Uint8Array | null = null;
  let trns: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  for (let i = 8; i < b.length;) {
    if (i + 12 > b.length) fail("chunk cut short");
    const length = u32(b, i);
    const end = i + 8 + length;
    if (end + 4 > b.length) fail("chunk cut short");
    const type = String.fromCharCode(b[i + 4], b[i + 5], b[i + 6], b[i + 7]);
    const data = b.subarray(i + 8, end);
    // The image data ends at the first chunk after the IDATs: nothing past it is read.
    if ((idat.length > 0 && type !== "IDAT") || type === "IEND") break;
    const critical = (b[i + 4] & 0x20) === 0;
    if (critical && pngCrc(b, i + 4, end) !== u32(b, end)) fail("bad CRC");
    if (header === null && type !== "IHDR") fail("IHDR is not first");
    if (type === "IHDR") {
      if (header !== null) fail("second IHDR");
      header = readIhdr(data);
    } else if (type === "PLTE") {
      if (length % 3 !== 0 || length === 0 || length > 768) fail("bad PLTE");
      palette = data;
    } else if (type === "tRNS") {
      checkTrns(header!.colorType, data);
      trns = data;
    } else if (type === "IDAT") {
      idat.push(data);
    } else if (critical) fail(`unknown critical chunk ${type}`);
    i = end + 4;
  }
  if (header === null || idat.length === 0) fail("no image data");
  if (header.colorType === 3 && palette === null) fail("no PLTE");
  return { ...header, palette, trns, idat };
}
