import assert from "node:assert/strict";
import { ClassifierError } from "../../src/errors.ts";
import { decodeImage, DEFAULT_MAX_PIXELS } from "../../src/image/mod.ts";
import { gifFirstFrameSize } from "../../src/image/_gif_header.ts";
import { diffStats, fixture } from "./_util.ts";

/**
 * Checks that decodeImage refuses `bytes` with `message` from the header checks alone. No clock:
 * those checks throw without a `cause`, where a decoder that ran and failed would leave its own
 * error as the cause; and the files below hold too little data for any decoder to succeed.
 */
async function refusedFromHeader(bytes: Uint8Array, message: RegExp): Promise<void> {
  await assert.rejects(() => decodeImage(bytes), (e: unknown) => {
    assert.ok(e instanceof ClassifierError, String(e));
    assert.equal(e.code, "decode_failed");
    assert.equal(e.status, 422);
    assert.match(e.message, message);
    assert.equal(e.cause, undefined, "a decoder ran");
    return true;
  });
}

Deno.test("the default pixel limit is 40 megapixels", () => {
  assert.equal(DEFAULT_MAX_PIXELS, 40_000_000);
});

Deno.test("decodeImage reads palette, 16-bit, gray and gray+alpha PNGs like ImageMagick", async () => {
  // References: ImageMagick's 8-bit RGBA reading of each file (tests/fixtures/make_formats.sh).
  // 16-bit gray+alpha rounds to 8 bits differently by at most 1 (high byte vs. v/257).
  const cases: [string, number][] = [
    ["fmt_png_palette", 0],
    ["fmt_png_rgb16", 0],
    ["fmt_png_gray", 0],
    ["fmt_png_gray_alpha16", 1],
  ];
  for (const [name, tolerance] of cases) {
    const img = await decodeImage(await fixture(`${name}.png`));
    const reference = await decodeImage(await fixture(`${name}_ref.png`));
    assert.deepEqual([img.width, img.height], [121, 81], name);
    const { max } = diffStats(img.data, reference.data);
    assert.ok(max <= tolerance, `${name}: max difference ${max}`);
  }
  const grayAlpha = await decodeImage(await fixture("fmt_png_gray_alpha16.png"));
  assert.ok(grayAlpha.data.some((v, i) => i % 4 === 3 && v < 128), "alpha kept");
});

Deno.test("decodeImage refuses a PNG declaring 60000x60000 from its header", async () => {
  const png = (await fixture("coffee.png")).slice();
  new DataView(png.buffer).setUint32(16, 60_000);
  new DataView(png.buffer).setUint32(20, 60_000);
  await refusedFromHeader(
    png,
    /^Cannot decode image: it is 60000x60000 \(3600 megapixels\), over the 40 /,
  );
});

Deno.test("decodeImage refuses a JPEG whose frame header declares 65000x65000", async () => {
  const jpeg = (await fixture("chelsea.jpg")).slice();
  let sof = -1;
  for (let i = 2; i < jpeg.length - 1; i++) {
    if (jpeg[i] === 0xff && (jpeg[i + 1] === 0xc0 || jpeg[i + 1] === 0xc2)) {
      sof = i;
      break;
    }
  }
  assert.ok(sof > 0, "fixture has a SOF marker");
  new DataView(jpeg.buffer).setUint16(sof + 5, 65_000);
  new DataView(jpeg.buffer).setUint16(sof + 7, 65_000);
  await refusedFromHeader(jpeg, /it is 65000x65000 \(4225 megapixels\)/);
});

Deno.test("decodeImage refuses a JPEG too short for its declared size before decoding", async () => {
  // 32 KB claiming 6000x6000 (36 MP, under the limit): at least one bit per 8x8 block is
  // 70 KB, so the data is missing and the decoder would spend seconds padding it.
  const jpeg = (await fixture("chelsea.jpg")).slice();
  const sof = jpeg.findIndex((b, i) => b === 0xff && jpeg[i + 1] === 0xc0);
  new DataView(jpeg.buffer).setUint16(sof + 5, 6000);
  new DataView(jpeg.buffer).setUint16(sof + 7, 6000);
  await refusedFromHeader(
    jpeg,
    /^Cannot decode image: the JPEG data is truncated \(32672 bytes cannot hold 6000x6000 pixels\)$/,
  );
});

Deno.test("decodeImage refuses a JPEG whose size it cannot read before decoding", async () => {
  const jpeg = await fixture("chelsea.jpg");
  // The first segment's length points into its own payload, where no marker is: no size to check.
  const broken = jpeg.slice();
  assert.deepEqual([...broken.subarray(0, 4)], [0xff, 0xd8, 0xff, 0xe0]);
  broken.set([0x00, 0x03], 4);
  await refusedFromHeader(
    broken,
    /^Cannot decode image: the JPEG header is truncated or malformed$/,
  );
});

Deno.test("decodeImage refuses GIFs whose screen or first frame is over the limit", async () => {
  const gif = (await fixture("offset_frame.gif")).slice();
  assert.deepEqual(gifFirstFrameSize(gif), { width: 12, height: 8 });
  const screen = gif.slice();
  new DataView(screen.buffer).setUint16(6, 65_000, true);
  new DataView(screen.buffer).setUint16(8, 65_000, true);
  await refusedFromHeader(screen, /it is 65000x65000/);
  // A 20x16 screen whose first frame claims 65000x65000: the decoder would allocate the frame.
  const frameAt = gif.indexOf(0x2c, 13);
  const frame = gif.slice();
  new DataView(frame.buffer).setUint16(frameAt + 5, 65_000, true);
  new DataView(frame.buffer).setUint16(frameAt + 7, 65_000, true);
  assert.deepEqual(gifFirstFrameSize(frame), { width: 65_000, height: 65_000 });
  await refusedFromHeader(frame, /it is 65000x65000/);
});

Deno.test("decodeImage handles CMYK and grayscale JPEGs and a palette GIF", async () => {
  const cmyk = await decodeImage(await fixture("chelsea_cmyk.jpg"));
  assert.deepEqual([cmyk.width, cmyk.height], [120, 80]);
  const gray = await decodeImage(await fixture("camera_gray.jpg"));
  assert.equal(gray.data[0], gray.data[1]);
  const gif = await decodeImage(await fixture("chelsea_animated.gif"));
  assert.deepEqual([gif.width, gif.height], [240, 160]);
});
