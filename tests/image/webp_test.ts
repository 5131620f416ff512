import assert from "node:assert/strict";
import { ClassifierError } from "../../src/errors.ts";
import { decodeImage } from "../../src/image/mod.ts";
import { decodeWebp, readWebpHeader } from "../../src/image/webp.ts";
import { fixture } from "./_util.ts";

async function rejectsWith(bytes: Uint8Array, message: RegExp): Promise<void> {
  await assert.rejects(() => decodeImage(bytes), (e: unknown) => {
    assert.ok(e instanceof ClassifierError, String(e));
    assert.equal(e.code, "decode_failed");
    assert.equal(e.status, 422);
    assert.match(e.message, message);
    return true;
  });
}

// First in the file: the module is compiled on first use, so this test sees that happen.
Deno.test("decodeWebp loads its WebAssembly from the installed package, never over the network", async () => {
  const original = globalThis.fetch;
  globalThis.fetch = () => Promise.reject(new Error("network used"));
  try {
    const img = await decodeWebp(await fixture("fmt_webp_lossy.webp"));
    assert.equal(img.width, 121);
  } finally {
    globalThis.fetch = original;
  }
});

Deno.test("readWebpHeader reads the size of lossy, lossless and animated files", async () => {
  assert.deepEqual(readWebpHeader(await fixture("fmt_webp_lossy.webp")), {
    width: 121,
    height: 81,
    animated: false,
  });
  assert.deepEqual(readWebpHeader(await fixture("fmt_webp_lossless_alpha.webp")), {
    width: 121,
    height: 81,
    animated: false,
  });
  assert.deepEqual(readWebpHeader(await fixture("fmt_webp_animated.webp")), {
    width: 240,
    height: 160,
    animated: true,
  });
  assert.equal(readWebpHeader(new TextEncoder().encode("RIFF\0\0\0\0WEBPVP8 ")), null);
});

Deno.test("decodeImage decodes lossy and lossless WebP exactly as libwebp 1.2.4 does", async () => {
  // The references are ImageMagick's decode (libwebp 1.2.4) of the same files; ours is
  // libwebp 1.0.2 compiled to WebAssembly. VP8 decoding is bit-exact by specification.
  for (const name of ["fmt_webp_lossy", "fmt_webp_lossless_alpha"]) {
    const img = await decodeImage(await fixture(`${name}.webp`));
    const reference = await decodeImage(await fixture(`${name}_ref.png`));
    assert.deepEqual([img.width, img.height], [121, 81], name);
    assert.deepEqual(img.data, reference.data, name);
  }
});

Deno.test("decodeImage takes the first frame of an animated WebP", async () => {
  const img = await decodeImage(await fixture("fmt_webp_animated.webp"));
  const frame0 = await decodeImage(await fixture("chelsea_animated_frame0.png"));
  assert.deepEqual([img.width, img.height], [240, 160]);
  assert.deepEqual(img.data, frame0.data);
});

Deno.test("decodeImage reports truncated and corrupt WebP as 422 and keeps working", async () => {
  const lossy = await fixture("fmt_webp_lossy.webp");
  for (const keep of [0.2, 0.6, 0.95]) {
    await rejectsWith(
      lossy.slice(0, Math.floor(lossy.length * keep)),
      /^Cannot decode image: the WebP data is truncated$/,
    );
  }
  await rejectsWith(lossy.slice(0, 20), /^Cannot decode image: the WebP header is truncated/);
  const corrupt = lossy.slice();
  for (let i = 40; i < 400; i++) corrupt[i] ^= 0x5a;
  await assert.rejects(() => decodeImage(corrupt), ClassifierError);
  const animated = await fixture("fmt_webp_animated.webp");
  await rejectsWith(animated.slice(0, 2000), /the WebP data is truncated/);
  assert.equal((await decodeImage(lossy)).width, 121);
});

Deno.test("decodeImage refuses a WebP canvas over the pixel limit from its header, before decoding", async () => {
  // VP8X declaring a canvas, with no image data.
  const vp8x = (width: number, height: number) => {
    const bytes = new Uint8Array(30);
    bytes.set(new TextEncoder().encode("RIFF\x16\0\0\0WEBPVP8X\x0a\0\0\0"));
    const v = new DataView(bytes.buffer);
    v.setUint16(24, width - 1, true); // 24-bit little-endian fields
    v.setUint16(27, height - 1, true);
    return bytes;
  };
  await rejectsWith(
    vp8x(16384, 16384),
    /^Cannot decode image: it is 16384x16384 \(268.4 megapixels\), over/,
  );
  // The same 2000x2000 header: under the limit the decoder gets it and finds no data; over
  // the limit it is refused with the size, so the decoder never saw it (no clock involved).
  await rejectsWith(vp8x(2000, 2000), /^Cannot decode image: the WebP data is (corrupt|truncated)/);
  await assert.rejects(
    () => decodeImage(vp8x(2000, 2000), { maxPixels: 1_000_000 }),
    /^ClassifierError: Cannot decode image: it is 2000x2000 \(4 megapixels\), over the 1 megapixel limit$/,
  );
});
