import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { decodeImage } from "../../src/image/mod.ts";
import { decodePngFast, PngFastError } from "../../src/image/png_fast.ts";
import { fixture } from "./_util.ts";

async function pngFixtures(): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(new URL("../fixtures/", import.meta.url))) {
    if (e.name.endsWith(".png")) names.push(e.name);
  }
  return names.sort();
}

Deno.test("decodePngFast gives exactly the full decoder's RGBA on every PNG fixture", async () => {
  // Covers 8/16-bit RGB(A), gray 2/8-bit, gray+alpha 16-bit, palette with tRNS, Adam7.
  const names = await pngFixtures();
  for (const required of ["png_gray2.png", "png_interlaced_rgb.png", "png_palette_trns.png"]) {
    assert.ok(names.includes(required), required);
  }
  for (const name of names) {
    const bytes = await fixture(name);
    const full = await decodeImage(bytes, { decoder: "full" });
    const fast = await decodePngFast(bytes);
    assert.deepEqual([fast.width, fast.height], [full.width, full.height], name);
    assert.ok(Buffer.compare(fast.data, full.data) === 0, `${name}: pixels differ`);
  }
});

Deno.test("decodePngFast reads tRNS as transparency and composites on a stated background", async () => {
  const bytes = await fixture("png_palette_trns.png");
  const kept = await decodePngFast(bytes);
  let transparent = 0;
  for (let i = 3; i < kept.data.length; i += 4) if (kept.data[i] === 0) transparent++;
  assert.ok(transparent > 100, `${transparent} transparent pixels`);
  const white = await decodePngFast(bytes, { background: [255, 255, 255] });
  for (let i = 0; i < kept.data.length; i += 4) {
    assert.equal(white.data[i + 3], 255);
    const expected = kept.data[i + 3] === 0 ? [255, 255, 255] : [...kept.data.subarray(i, i + 3)];
    assert.deepEqual([...white.data.subarray(i, i + 3)], expected, `pixel ${i / 4}`);
  }
  // Half alpha: the mean of colour and background, rounded.
  const ramp = await fixture("fmt_png_gray_alpha16.png");
  const a = await decodePngFast(ramp);
  const b = await decodePngFast(ramp, { background: [0, 0, 0] });
  for (let i = 0; i < a.data.length; i += 4) {
    assert.equal(b.data[i], Math.round((a.data[i] * a.data[i + 3]) / 255));
  }
});

Deno.test("decodePngFast tells truncated from corrupt", async () => {
  const bytes = await fixture("coffee.png");
  for (const keep of [0.05, 0.5, 0.99]) {
    const cut = bytes.slice(0, Math.floor(bytes.length * keep));
    await assert.rejects(() => decodePngFast(cut), (e: unknown) => {
      assert.ok(e instanceof PngFastError && e.reason === "truncated", `${keep}: ${e}`);
      return true;
    });
  }
  const bad = bytes.slice();
  for (let i = 600; i < 2000; i++) bad[i] ^= 0x5a;
  await assert.rejects(() => decodePngFast(bad), (e: unknown) => {
    assert.ok(e instanceof PngFastError && e.reason === "corrupt", `${e}`);
    return true;
  });
});

Deno.test("decodePngFast calls unknown colour types unsupported", async () => {
  const bytes = (await fixture("fmt_png_gray.png")).slice();
  bytes[8 + 8 + 9] = 5; // IHDR colour type 5 does not exist
  await assert.rejects(() => decodePngFast(bytes), (e: unknown) => {
    assert.ok(e instanceof PngFastError && e.reason === "unsupported");
    return true;
  });
});
