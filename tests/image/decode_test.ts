import assert from "node:assert/strict";
import { Image } from "imagescript";
import { ClassifierError } from "../../src/errors.ts";
import { type DecodedImage, decodeImage } from "../../src/image/mod.ts";
import { diffStats, fixture, randomImage, rng } from "./_util.ts";

async function rejects(
  bytes: Uint8Array,
  code: string,
  message: RegExp,
  options?: { maxPixels?: number },
): Promise<void> {
  await assert.rejects(() => decodeImage(bytes, options), (e: unknown) => {
    assert.ok(e instanceof ClassifierError, `expected a ClassifierError, got ${e}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  });
}

// Every user-facing message: sentence case, action first, no decoder internals.
const SAFE = /^Cannot [a-z][^\n]*$/;

async function encodePng(img: DecodedImage): Promise<Uint8Array> {
  const image = new Image(img.width, img.height);
  image.bitmap.set(img.data);
  return await image.encode();
}

function allOpaque(img: DecodedImage): boolean {
  for (let i = 3; i < img.data.length; i += 4) if (img.data[i] !== 255) return false;
  return true;
}

Deno.test("decodeImage decodes a baseline JPEG to RGBA at its stored size", async () => {
  const img = await decodeImage(await fixture("chelsea.jpg"));
  assert.equal(img.width, 448);
  assert.equal(img.height, 288);
  assert.ok(img.data instanceof Uint8Array);
  assert.equal(img.data.length, 448 * 288 * 4);
  assert.ok(allOpaque(img));
});

Deno.test("decodeImage decodes a progressive JPEG and a JPEG from a camera pipeline", async () => {
  const astronaut = await decodeImage(await fixture("astronaut_progressive.jpg"));
  assert.deepEqual([astronaut.width, astronaut.height], [512, 512]);
  const rocket = await decodeImage(await fixture("rocket.jpg"));
  assert.deepEqual([rocket.width, rocket.height], [640, 427]);
});

Deno.test("decodeImage spreads a grayscale JPEG to equal R, G and B", async () => {
  const img = await decodeImage(await fixture("camera_gray.jpg"));
  assert.deepEqual([img.width, img.height], [256, 256]);
  for (let i = 0; i < img.data.length; i += 4) {
    assert.ok(img.data[i] === img.data[i + 1] && img.data[i] === img.data[i + 2], `pixel ${i / 4}`);
  }
});

Deno.test("decodeImage gives exactly the pixels of imagescript's Image.decode", async () => {
  // decodeImage calls the same WASM decoders directly (no native addon, one
  // repacking loop); imagescript's public API is the reference for its repacking, for
  // every JPEG pixel format (RGB, gray, CMYK) and PNG.
  const jpegs = ["chelsea.jpg", "astronaut_progressive.jpg", "rocket.jpg", "camera_gray.jpg"];
  // JPEGs through the full decoder: the fast one (jpeg_fast_test.ts) upsamples chroma
  // differently, so it is compared with a tolerance there.
  for (const name of [...jpegs, "chelsea_cmyk.jpg", "coffee.png", "coffee_pillow_224.png"]) {
    const bytes = await fixture(name);
    const reference = await Image.decode(bytes);
    const img = await decodeImage(bytes, { decoder: "full" });
    assert.deepEqual([img.width, img.height], [reference.width, reference.height], name);
    assert.deepEqual(img.data, new Uint8Array(reference.bitmap.buffer), name);
  }
});

Deno.test("decodeImage gives an offset GIF frame on its screen exactly as ImageMagick does", async () => {
  // The reference is ImageMagick's reading kept as PNG (tests/fixtures/make_fixtures.sh), not
  // imagescript's GIF decoder, which decodeImage uses; the animated GIF's first frame is
  // compared with ImageMagick's the same way below.
  const img = await decodeImage(await fixture("offset_frame.gif"));
  const reference = await decodeImage(await fixture("offset_frame_ref.png"));
  assert.deepEqual([img.width, img.height], [reference.width, reference.height]);
  assert.deepEqual(img.data, reference.data);
});

Deno.test("decodeImage returns PNG pixels exactly, alpha included", async () => {
  const original = randomImage(13, 7, rng(21));
  const img = await decodeImage(await encodePng(original));
  assert.deepEqual(img, original);
});

Deno.test("decodeImage decodes a real PNG photo", async () => {
  const img = await decodeImage(await fixture("coffee.png"));
  assert.deepEqual([img.width, img.height], [400, 300]);
  assert.ok(allOpaque(img));
});

Deno.test("decodeImage takes the first frame of an animated GIF", async () => {
  const img = await decodeImage(await fixture("chelsea_animated.gif"));
  // ImageMagick's reading of frame 0, kept as PNG: palette colours match exactly.
  const frame0 = await decodeImage(await fixture("chelsea_animated_frame0.png"));
  assert.deepEqual([img.width, img.height], [240, 160]);
  // Frame 1 is the negative, so a decoder that kept the last frame would be far off.
  assert.deepEqual(img.data, frame0.data);
});

Deno.test("decodeImage places a GIF's first frame at its offset on the logical screen", async () => {
  // offset_frame.gif: a 12x8 opaque frame at +5+4 on a 20x16 screen.
  const img = await decodeImage(await fixture("offset_frame.gif"));
  assert.deepEqual([img.width, img.height], [20, 16]);
  for (let y = 0; y < 16; y++) {
    for (let x = 0; x < 20; x++) {
      const inside = x >= 5 && x < 17 && y >= 4 && y < 12;
      assert.equal(img.data[(y * 20 + x) * 4 + 3], inside ? 255 : 0, `alpha at ${x},${y}`);
    }
  }
});

Deno.test("decodeImage turns every EXIF orientation 2-8 upright like its twin", async () => {
  // The twins hold the upright JPEG's DCT blocks rearranged by jpegtran and an
  // Orientation tag; the decoder's IDCT is not exactly transpose-symmetric, so
  // up to 3 grey levels differ (mean under 0.05) for 5-8, up to 1 for 2-4.
  const upright = await decodeImage(await fixture("chelsea.jpg"));
  for (let o = 2; o <= 8; o++) {
    const twin = await decodeImage(await fixture(`chelsea_exif${o}.jpg`));
    assert.deepEqual([twin.width, twin.height], [448, 288], `orientation ${o}`);
    const { max, mean } = diffStats(twin.data, upright.data);
    assert.ok(max <= 3 && mean < 0.05, `orientation ${o}: max ${max}, mean ${mean}`);
  }
});

Deno.test("decodeImage treats a corrupt or out-of-range EXIF orientation as upright", async () => {
  const stored = await fixture("chelsea_exif6.jpg");
  // The APP1 payload: "Exif\0\0", TIFF header "MM\0*" + IFD0 offset (4 bytes),
  // then IFD0's entry count (2) and its one entry: tag 0x0112, type, count, value.
  const at = new TextDecoder("latin1").decode(stored).indexOf("Exif\0\0");
  assert.ok(at > 0, "fixture has an EXIF block");
  const tiff = at + 6;
  assert.deepEqual([...stored.subarray(tiff + 10, tiff + 12)], [0x01, 0x12], "Orientation tag");
  const variants: [string, number, number[]][] = [
    ["IFD0 offset past the end", tiff + 4, [0xff, 0xff, 0xff, 0xf0]],
    ["Orientation value 99", tiff + 18, [0, 99]],
    ["Orientation value 0", tiff + 18, [0, 0]],
    ["unknown field type", tiff + 12, [0, 99]],
  ];
  for (const [what, offset, bytes] of variants) {
    const corrupt = stored.slice();
    corrupt.set(bytes, offset);
    const img = await decodeImage(corrupt);
    assert.deepEqual([img.width, img.height], [288, 448], `${what}: stored size, not turned`);
  }
});

Deno.test("decodeImage rejects non-images with unsupported_media_type", async () => {
  const text = (s: string) => new TextEncoder().encode(s);
  await rejects(
    text("hello"),
    "unsupported_media_type",
    /it is not a JPEG, PNG, GIF, WebP or BMP image/,
  );
  await rejects(
    text("\0\0\0\x20ftypavif\0\0\0\0"),
    "unsupported_media_type",
    /^Cannot classify this file: it is an AVIF image, not a JPEG, PNG, GIF, WebP or BMP$/,
  );
  // "BM" alone is not a BMP: a known DIB header size must follow.
  await rejects(text("BMW is a car maker"), "unsupported_media_type", /not a JPEG, PNG/);
  await rejects(
    new Uint8Array(),
    "unsupported_media_type",
    /^Cannot classify this file: it is empty$/,
  );
  await assert.rejects(() => decodeImage(text("<svg/>")), (e: unknown) => {
    assert.ok(e instanceof ClassifierError);
    assert.equal(e.status, 415);
    assert.match(e.message, SAFE);
    assert.equal(
      e.message,
      "Cannot classify this file: it is not a JPEG, PNG, GIF, WebP or BMP image",
    );
    return true;
  });
});

Deno.test("decodeImage reports truncated JPEG, PNG and GIF files as decode_failed", async () => {
  // Cut points inside the first GIF frame: only that frame is decoded, so a GIF
  // cut in a later frame still gives its first frame (next test).
  const cases: [string, string, number[]][] = [
    ["chelsea.jpg", "JPEG", [0.1, 0.5, 0.9, 0.999]],
    ["astronaut_progressive.jpg", "JPEG", [0.1, 0.5, 0.9]],
    ["coffee.png", "PNG", [0.1, 0.5, 0.99]],
    ["chelsea_animated.gif", "GIF", [0.1, 0.3]],
  ];
  for (const [name, format, cuts] of cases) {
    const bytes = await fixture(name);
    for (const keep of cuts) {
      const cut = bytes.slice(0, Math.floor(bytes.length * keep));
      await rejects(
        cut,
        "decode_failed",
        new RegExp(`^Cannot decode image: the ${format} data is truncated$`),
      );
    }
  }
});

Deno.test("decodeImage still gives the first frame of a GIF cut in a later frame", async () => {
  const gif = await fixture("chelsea_animated.gif");
  const img = await decodeImage(gif.slice(0, Math.floor(gif.length * 0.9)));
  const frame0 = await decodeImage(await fixture("chelsea_animated_frame0.png"));
  assert.deepEqual(img.data, frame0.data);
});

Deno.test("decodeImage reports a header cut short as decode_failed", async () => {
  const png = await fixture("coffee.png");
  await rejects(
    png.slice(0, 12),
    "decode_failed",
    /^Cannot decode image: the PNG header is truncated or malformed$/,
  );
  const jpeg = await fixture("chelsea.jpg");
  await rejects(jpeg.slice(0, 40), "decode_failed", /^Cannot decode image: the JPEG header/);
  const gif = await fixture("chelsea_animated.gif");
  await rejects(gif.slice(0, 8), "decode_failed", /^Cannot decode image: the GIF header/);
});

Deno.test("decodeImage reports corrupt data as decode_failed and keeps working", async () => {
  const jpeg = await fixture("chelsea.jpg");
  for (let i = 600; i < 2000; i++) jpeg[i] ^= 0x5a; // scrambles tables and scan data
  await rejects(jpeg, "decode_failed", /^Cannot decode image: the JPEG data is corrupt$/);

  const png = await fixture("coffee.png");
  for (let i = 600; i < 2000; i++) png[i] ^= 0x5a; // breaks the zlib stream and CRCs
  await rejects(png, "decode_failed", /^Cannot decode image: the PNG data is corrupt$/);

  // The JPEG decoder trapped above; a fresh decode must still succeed.
  const img = await decodeImage(await fixture("chelsea.jpg"));
  assert.equal(img.width, 448);
});

Deno.test("decodeImage keeps the decoder's error as the cause, not in the message", async () => {
  const bytes = (await fixture("chelsea.jpg")).slice(0, 5000);
  const error = await decodeImage(bytes).catch((e) => e);
  assert.ok(error instanceof ClassifierError);
  assert.ok(error.cause instanceof Error, "cause kept for the log");
  assert.match(error.message, SAFE);
  assert.doesNotMatch(error.message, /jpg:|wasm|unreachable|Error/);
});

Deno.test("decodeImage refuses images over the pixel limit before decoding, as 422", async () => {
  // A PNG signature and IHDR claiming 100000 x 100000, and nothing else.
  const bomb = new Uint8Array(33);
  bomb.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  new DataView(bomb.buffer).setUint32(16, 100_000);
  new DataView(bomb.buffer).setUint32(20, 100_000);
  await rejects(
    bomb,
    "decode_failed",
    /^Cannot decode image: it is 100000x100000 \(10000 megapixels\), over the 40 megapixel limit$/,
  );

  const jpeg = await fixture("chelsea.jpg");
  await rejects(jpeg, "decode_failed", /448x288 .* over the 0.1 megapixel limit/, {
    maxPixels: 100_000,
  });
  const img = await decodeImage(jpeg, { maxPixels: 448 * 288 });
  assert.equal(img.width, 448);
});
