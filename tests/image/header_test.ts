import assert from "node:assert/strict";
import { countJpegScans, pngDataBytes, readSampleLayout } from "../../src/image/_header.ts";
import { decodeJpegFast, lastJpegWork } from "../../src/image/jpeg_fast.ts";
import { manyScanJpeg, png } from "../hardening/corpus_images.ts";
import { fixture } from "./_util.ts";

Deno.test("countJpegScans finds the scans the decoder decodes, through stuffed and restart bytes", async () => {
  for (
    const name of [
      "chelsea.jpg",
      "astronaut_progressive.jpg",
      "jpeg_444_progressive_restart.jpg",
      "jpeg_420_noninterleaved.jpg",
      "jpeg_420_restart.jpg",
    ]
  ) {
    const bytes = await fixture(name);
    await decodeJpegFast(bytes);
    assert.equal(countJpegScans(bytes, 1000), lastJpegWork().scans, name);
  }
});

Deno.test("countJpegScans stops counting one past its limit", () => {
  const bytes = manyScanJpeg({ width: 16, height: 16 }, 300);
  assert.equal(countJpegScans(bytes, 1000), 301);
  assert.equal(countJpegScans(bytes, 100), 101);
});

Deno.test("readSampleLayout counts 16-bit samples and alpha from the header", async () => {
  const rgba16 = png({ width: 4, height: 4, bitDepth: 16, colorType: 6 });
  assert.deepEqual(readSampleLayout(rgba16, "png"), { channels: 4, bytesPerSample: 2 });
  const grey8 = png({ width: 4, height: 4, bitDepth: 8, colorType: 0 });
  assert.deepEqual(readSampleLayout(grey8, "png"), { channels: 1, bytesPerSample: 1 });
  const cmyk = await fixture("chelsea_cmyk.jpg");
  assert.deepEqual(readSampleLayout(cmyk, "jpeg"), { channels: 4, bytesPerSample: 1 });
  const gray = await fixture("camera_gray.jpg");
  assert.deepEqual(readSampleLayout(gray, "jpeg"), { channels: 1, bytesPerSample: 1 });
  assert.equal(readSampleLayout(rgba16.subarray(0, 20), "png"), null);
});

Deno.test("pngDataBytes sums the IDAT chunks and counts a cut one as far as it goes", () => {
  const bytes = png({ width: 40, height: 40, bitDepth: 8, colorType: 2 });
  // signature, IHDR (12 + 13), then IDAT: its length field is the data.
  const idat = new DataView(bytes.buffer).getUint32(33);
  assert.equal(pngDataBytes(bytes), idat);
  assert.equal(pngDataBytes(bytes.subarray(0, 33 + 8 + 5)), 5);
});
