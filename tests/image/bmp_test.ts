import assert from "node:assert/strict";
import { ClassifierError } from "../../src/errors.ts";
import { decodeImage } from "../../src/image/mod.ts";
import { bmpStride, decodeBmp, readBmpHeader } from "../../src/image/bmp.ts";
import { fixture } from "./_util.ts";

// Each fmt_bmp*.bmp has a twin fmt_bmp*_ref.png: ImageMagick's own reading of
// it (tests/fixtures/make_formats.sh), an independent reference implementation.
const FIXTURES = [
  ["fmt_bmp24.bmp", 24, 0],
  ["fmt_bmp24_topdown.bmp", 24, 0],
  ["fmt_bmp32_alpha.bmp", 32, 3],
  ["fmt_bmp16_565.bmp", 16, 3],
  ["fmt_bmp8_palette.bmp", 8, 0],
  ["fmt_bmp8_rle.bmp", 8, 1],
  ["fmt_bmp4_palette.bmp", 4, 0],
  ["fmt_bmp1.bmp", 1, 0],
] as const;

/** A BMP with a BITMAPINFOHEADER; `rows` are stored as given (already padded). */
function makeBmp(options: {
  width: number;
  height: number;
  bpp: number;
  compression?: number;
  palette?: [number, number, number][];
  data: number[];
}): Uint8Array {
  const palette = options.palette ?? [];
  const offset = 54 + palette.length * 4;
  const b = new Uint8Array(offset + options.data.length);
  const v = new DataView(b.buffer);
  b.set([0x42, 0x4d]);
  v.setUint32(2, b.length, true);
  v.setUint32(10, offset, true);
  v.setUint32(14, 40, true);
  v.setInt32(18, options.width, true);
  v.setInt32(22, options.height, true);
  v.setUint16(26, 1, true);
  v.setUint16(28, options.bpp, true);
  v.setUint32(30, options.compression ?? 0, true);
  v.setUint32(46, palette.length, true);
  palette.forEach(([r, g, bl], i) => b.set([bl, g, r, 0], 54 + i * 4));
  b.set(options.data, offset);
  return b;
}

async function rejectsWith(bytes: Uint8Array, message: RegExp): Promise<void> {
  await assert.rejects(() => decodeImage(bytes), (e: unknown) => {
    assert.ok(e instanceof ClassifierError, String(e));
    assert.equal(e.code, "decode_failed");
    assert.equal(e.status, 422);
    assert.match(e.message, message);
    return true;
  });
}

const px = (data: Uint8Array, i: number) => [...data.subarray(i * 4, i * 4 + 4)];

Deno.test("decodeBmp matches ImageMagick's reading of every BMP fixture exactly", async () => {
  for (const [name, bpp, compression] of FIXTURES) {
    const bytes = await fixture(name);
    const header = readBmpHeader(bytes);
    assert.deepEqual([header.bitsPerPixel, header.compression], [bpp, compression], name);
    const img = decodeBmp(bytes);
    const reference = await decodeImage(await fixture(name.replace(".bmp", "_ref.png")));
    assert.deepEqual([img.width, img.height], [121, 81], name);
    assert.deepEqual(img.data, reference.data, name);
  }
});

Deno.test("decodeBmp reads bottom-up and top-down rows into the same picture", async () => {
  const up = await fixture("fmt_bmp24.bmp");
  const down = await fixture("fmt_bmp24_topdown.bmp");
  assert.equal(readBmpHeader(up).topDown, false);
  assert.equal(readBmpHeader(down).topDown, true);
  assert.deepEqual(decodeBmp(up), decodeBmp(down));
});

Deno.test("decodeBmp keeps the alpha of a BI_BITFIELDS file and ignores BI_RGB padding", async () => {
  const alpha = decodeBmp(await fixture("fmt_bmp32_alpha.bmp"));
  const alphas = new Set<number>();
  for (let i = 3; i < alpha.data.length; i += 4) alphas.add(alpha.data[i]);
  assert.ok(alphas.size > 100, "a ramp of alpha values");
  // 32-bit BI_RGB: the fourth byte is padding, even when a writer left junk in it.
  const bmp = makeBmp({ width: 1, height: 1, bpp: 32, data: [10, 20, 30, 0] });
  assert.deepEqual(px(decodeBmp(bmp).data, 0), [30, 20, 10, 255]);
});

Deno.test("decodeBmp pads rows to 4 bytes and reads 1, 4 and 8-bit indices MSB first", () => {
  assert.equal(bmpStride({ width: 121, bitsPerPixel: 24 }), 364);
  assert.equal(bmpStride({ width: 121, bitsPerPixel: 1 }), 16);
  const palette: [number, number, number][] = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]];
  // 3x2, 4-bit: bottom row 1 2 3, top row 3 2 1; each row 2 bytes + 2 padding.
  const four = makeBmp({
    width: 3,
    height: 2,
    bpp: 4,
    palette,
    data: [0x12, 0x30, 0, 0, 0x32, 0x10, 0, 0],
  });
  const img = decodeBmp(four);
  assert.deepEqual(px(img.data, 0), [0, 0, 255, 255]); // top-left is index 3
  assert.deepEqual(px(img.data, 3), [255, 0, 0, 255]); // bottom-left is index 1
  // An index past the palette reads as opaque black rather than failing.
  const eight = makeBmp({ width: 1, height: 1, bpp: 8, palette, data: [200, 0, 0, 0] });
  assert.deepEqual(px(decodeBmp(eight).data, 0), [0, 0, 0, 255]);
});

Deno.test("decodeBmp decodes RLE8 and RLE4 runs, literals, deltas and end-of-line", () => {
  const palette: [number, number, number][] = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]];
  // 5x2 RLE8, bottom row first: a run of 2 x index 1, a literal [2, 3, 1] (padded to an
  // even length), end of line; then a delta of (2, 0), a run of 2 x index 3, end of bitmap.
  // (A literal needs 3 or more indices: 0 2 is the delta escape.)
  const rle8 = makeBmp({
    width: 5,
    height: 2,
    bpp: 8,
    compression: 1,
    palette,
    data: [2, 1, 0, 3, 2, 3, 1, 0, 0, 0, 0, 2, 2, 0, 2, 3, 0, 1],
  });
  const a = decodeBmp(rle8).data;
  const [red, green, blue, unset] = [[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 255], [
    0,
    0,
    0,
    0,
  ]];
  // Top row (stored second): 2 skipped pixels, two blue, one never written (transparent).
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => px(a, i)), [unset, unset, blue, blue, unset]);
  assert.deepEqual([5, 6, 7, 8, 9].map((i) => px(a, i)), [red, red, green, blue, red]);
  // 3x1 RLE4: a run of 3 alternating 1,2,1, end of bitmap.
  const rle4 = makeBmp({
    width: 3,
    height: 1,
    bpp: 4,
    compression: 2,
    palette,
    data: [3, 0x12, 0, 1],
  });
  const b = decodeBmp(rle4).data;
  assert.deepEqual([0, 1, 2].map((i) => px(b, i)), [red, green, red]);
});

Deno.test("decodeImage reports broken BMPs as 422 with the reason", async () => {
  const good = await fixture("fmt_bmp24.bmp");
  await rejectsWith(
    good.slice(0, good.length - 500),
    /^Cannot decode image: the BMP data is truncated$/,
  );
  await rejectsWith(good.slice(0, 30), /^Cannot decode image: the BMP header is truncated$/);
  const rle = await fixture("fmt_bmp8_rle.bmp");
  await rejectsWith(rle.slice(0, rle.length - 400), /the BMP data is truncated/);
  const edit = (at: number, value: number, size: 2 | 4 = 4) => {
    const b = good.slice();
    const v = new DataView(b.buffer);
    if (size === 2) v.setUint16(at, value, true);
    else v.setInt32(at, value, true);
    return b;
  };
  await rejectsWith(edit(28, 7, 2), /header declares 7 bits per pixel/);
  await rejectsWith(edit(18, 0), /invalid size \(0x81\)/);
  await rejectsWith(edit(18, -5), /invalid size/);
  await rejectsWith(edit(30, 4), /holds an embedded JPEG, which is not supported/);
  await rejectsWith(edit(30, 5), /holds an embedded PNG, which is not supported/);
  await rejectsWith(edit(30, 9), /declares compression 9/);
  await rejectsWith(edit(10, 10_000_000), /data is truncated/);
  const topDownRle = rle.slice();
  new DataView(topDownRle.buffer).setInt32(22, -81, true);
  await rejectsWith(topDownRle, /top-down RLE image, which is invalid/);
});

Deno.test("decodeImage refuses a BMP declaring a huge size from its header alone", async () => {
  const bomb = makeBmp({ width: 50_000, height: 50_000, bpp: 24, data: [0, 0, 0, 0] });
  await rejectsWith(bomb, /^Cannot decode image: it is 50000x50000 \(2500 megapixels\), over/);
  // The same 2000x2000 header: under the limit the decoder gets it and finds the data short;
  // over the limit it is refused with the size, so the decoder never saw it (no clock involved).
  const header = makeBmp({ width: 2000, height: 2000, bpp: 24, data: [0, 0, 0, 0] });
  await rejectsWith(header, /^Cannot decode image: the BMP data is truncated/);
  await assert.rejects(
    () => decodeImage(header, { maxPixels: 1_000_000 }),
    /^ClassifierError: Cannot decode image: it is 2000x2000 \(4 megapixels\), over the 1 megapixel limit$/,
  );
});
