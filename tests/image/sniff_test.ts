import assert from "node:assert/strict";
import { sniffImageFormat } from "../../src/image/mod.ts";
import { fixture } from "./_util.ts";

const bytes = (...b: number[]) => new Uint8Array(b);
const text = (s: string) => new TextEncoder().encode(s);

Deno.test("sniffImageFormat recognises JPEG, PNG and GIF magic bytes", () => {
  assert.equal(sniffImageFormat(bytes(0xff, 0xd8, 0xff)), "jpeg");
  assert.equal(sniffImageFormat(bytes(0xff, 0xd8, 0xff, 0xe1, 0x00)), "jpeg");
  assert.equal(sniffImageFormat(bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)), "png");
  assert.equal(sniffImageFormat(text("GIF87a")), "gif");
  assert.equal(sniffImageFormat(text("GIF89a\x01\x00\x01\x00")), "gif");
});

Deno.test("sniffImageFormat identifies every fixture by content", async () => {
  assert.equal(sniffImageFormat(await fixture("chelsea.jpg")), "jpeg");
  assert.equal(sniffImageFormat(await fixture("astronaut_progressive.jpg")), "jpeg");
  assert.equal(sniffImageFormat(await fixture("chelsea_exif6.jpg")), "jpeg");
  assert.equal(sniffImageFormat(await fixture("coffee.png")), "png");
  assert.equal(sniffImageFormat(await fixture("chelsea_animated.gif")), "gif");
});

Deno.test("sniffImageFormat recognises WebP and BMP, BMP only with a known DIB header size", () => {
  assert.equal(sniffImageFormat(text("RIFF\x00\x00\x00\x00WEBPVP8 ")), "webp");
  const bmp = new Uint8Array(18);
  bmp.set(text("BM"));
  for (const dib of [12, 40, 108, 124]) {
    bmp[14] = dib;
    assert.equal(sniffImageFormat(bmp), "bmp", `DIB header of ${dib} bytes`);
  }
  bmp[14] = 41;
  assert.equal(sniffImageFormat(bmp), null);
  assert.equal(sniffImageFormat(text("BMW is a car maker")), null);
});

Deno.test("sniffImageFormat returns null for other formats", () => {
  assert.equal(sniffImageFormat(text("RIFF\x00\x00\x00\x00WAVEfmt ")), null);
  assert.equal(sniffImageFormat(text("BM6\x00\x00\x00")), null);
  assert.equal(sniffImageFormat(bytes(0x49, 0x49, 0x2a, 0x00)), null);
  assert.equal(sniffImageFormat(text("<svg xmlns='http://www.w3.org/2000/svg'/>")), null);
  assert.equal(sniffImageFormat(text("%PDF-1.7")), null);
  assert.equal(sniffImageFormat(text("GIF88a")), null);
  // One wrong byte in the PNG signature (a text-mode transfer turned \r\n into \n).
  assert.equal(sniffImageFormat(bytes(0x89, 0x50, 0x4e, 0x47, 0x0a, 0x1a, 0x0a, 0x00)), null);
});

Deno.test("sniffImageFormat returns null for empty and too-short input", () => {
  assert.equal(sniffImageFormat(new Uint8Array()), null);
  assert.equal(sniffImageFormat(bytes(0xff, 0xd8)), null);
  assert.equal(sniffImageFormat(bytes(0x89, 0x50, 0x4e, 0x47)), null);
  assert.equal(sniffImageFormat(text("GIF89")), null);
});

Deno.test("sniffImageFormat reads a view at its own offset", () => {
  const buffer = new Uint8Array([0, 0, 0xff, 0xd8, 0xff, 0xe0]);
  assert.equal(sniffImageFormat(buffer.subarray(2)), "jpeg");
  assert.equal(sniffImageFormat(buffer), null);
});
