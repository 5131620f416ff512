import assert from "node:assert/strict";
import { createApp } from "../../src/api/mod.ts";
import { tinyState } from "./_state.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const fixture = (name: string) => Deno.readFile(new URL(`../fixtures/${name}`, import.meta.url));
const raw = (body: Uint8Array) => ({ method: "POST", body: body as BodyInit });

async function error(res: Response) {
  const body = await res.json();
  return { status: res.status, code: body.error?.code, message: body.error?.message as string };
}

Deno.test({
  name: "/predict classifies every format: JPEG (RGB, gray, CMYK), PNG types, GIF, WebP, BMP",
  ...t,
  async fn() {
    const app = createApp(await tinyState());
    const names = [
      "chelsea.jpg",
      "camera_gray.jpg",
      "chelsea_cmyk.jpg",
      "astronaut_progressive.jpg",
      "fmt_png_palette.png",
      "fmt_png_rgb16.png",
      "fmt_png_gray.png",
      "fmt_png_gray_alpha16.png",
      "chelsea_animated.gif",
      "fmt_webp_lossy.webp",
      "fmt_webp_lossless_alpha.webp",
      "fmt_webp_animated.webp",
      "fmt_bmp24.bmp",
      "fmt_bmp24_topdown.bmp",
      "fmt_bmp32_alpha.bmp",
      "fmt_bmp8_palette.bmp",
      "fmt_bmp8_rle.bmp",
      "fmt_bmp16_565.bmp",
      "fmt_bmp1.bmp",
    ];
    for (const name of names) {
      // The Content-Type is deliberately wrong: the bytes decide.
      const res = await app.request("/predict", {
        method: "POST",
        headers: { "content-type": "application/octet-stream" },
        body: await fixture(name),
      });
      assert.equal(res.status, 200, name);
      assert.equal((await res.json()).predictions.length, 4, name);
    }
  },
});

Deno.test({
  name: "/predict refuses decompression bombs of every format with 422 from their headers",
  ...t,
  async fn() {
    const app = createApp(await tinyState());
    const png = (await fixture("coffee.png")).slice();
    new DataView(png.buffer).setUint32(16, 60_000);
    new DataView(png.buffer).setUint32(20, 60_000);
    const jpeg = (await fixture("chelsea.jpg")).slice();
    const sof = jpeg.findIndex((b, i) => b === 0xff && jpeg[i + 1] === 0xc0);
    new DataView(jpeg.buffer).setUint16(sof + 5, 65_000);
    new DataView(jpeg.buffer).setUint16(sof + 7, 65_000);
    const gif = (await fixture("offset_frame.gif")).slice();
    const frame = gif.indexOf(0x2c, 13);
    new DataView(gif.buffer).setUint16(frame + 5, 60_000, true);
    new DataView(gif.buffer).setUint16(frame + 7, 60_000, true);
    const webp = (await fixture("fmt_webp_animated.webp")).slice();
    webp.set([0xff, 0x3f, 0x00, 0xff, 0x3f, 0x00], 24); // VP8X canvas 16384 x 16384
    const bmp = (await fixture("fmt_bmp24.bmp")).slice();
    new DataView(bmp.buffer).setInt32(18, 50_000, true);
    new DataView(bmp.buffer).setInt32(22, 50_000, true);
    for (const [name, bytes] of Object.entries({ png, jpeg, gif, webp, bmp })) {
      // The size message comes from the header check (tests/image/formats_test.ts shows no
      // decoder ran); no clock is asserted on.
      const { status, code, message } = await error(await app.request("/predict", raw(bytes)));
      assert.equal(status, 422, name);
      assert.equal(code, "decode_failed", name);
      assert.match(message, /megapixels\), over the 40 megapixel limit$/, name);
    }
  },
});

Deno.test({
  name: "/predict applies the configured pixel limit, and explains truncated and corrupt files",
  ...t,
  async fn() {
    const small = createApp(await tinyState(), { maxPixels: 100_000 });
    const big = await error(await small.request("/predict", raw(await fixture("chelsea.jpg"))));
    assert.deepEqual([big.status, big.code], [422, "decode_failed"]);
    assert.match(big.message, /448x288 \(0\.1 megapixels\), over the 0\.1 megapixel limit/);

    const app = createApp(await tinyState());
    const cases: [string, number, RegExp][] = [
      ["chelsea.jpg", 0.5, /^Cannot decode image: the JPEG data is truncated$/],
      ["coffee.png", 0.5, /^Cannot decode image: the PNG data is truncated$/],
      ["fmt_webp_lossy.webp", 0.5, /^Cannot decode image: the WebP data is truncated$/],
      ["fmt_bmp24.bmp", 0.5, /^Cannot decode image: the BMP data is truncated$/],
      ["chelsea_animated.gif", 0.1, /^Cannot decode image: the GIF data is truncated$/],
    ];
    for (const [name, keep, message] of cases) {
      const bytes = await fixture(name);
      const res = await app.request(
        "/predict",
        raw(bytes.slice(0, Math.floor(bytes.length * keep))),
      );
      const e = await error(res);
      assert.deepEqual([e.status, e.code], [422, "decode_failed"], name);
      assert.match(e.message, message, name);
    }
  },
});
