/**
 * The hostile image corpus (`corpus_images.ts`) at small sizes, through `decodeImage`: each
 * case is refused with 422 and a message that says what was over, or decoded, and the JPEG
 * decoder's own counters show the work stayed within its budget (no timings).
 *
 * @module
 */
import assert from "node:assert/strict";
import { ClassifierError } from "../../src/errors.ts";
import { decodeImage } from "../../src/image/decode.ts";
import { reduceByBoxMean } from "../../src/image/_png_reduce_reference.ts";
import { TORCHVISION_PREPROCESSING } from "../../src/model/manifest.ts";
import {
  decodeJpegFast,
  JPEG_MAX_SCANS,
  JPEG_VISITS_PER_BLOCK,
  lastJpegWork,
} from "../../src/image/jpeg_fast.ts";
import {
  lyingSofJpeg,
  manyChromaScanJpeg,
  manyScanJpeg,
  png,
  refinementWithoutFirstPassJpeg,
  standardProgressiveJpeg,
} from "./corpus_images.ts";

const SIZE = { width: 256, height: 256 };
const BLOCKS = 32 * 32;

async function refused(
  bytes: Uint8Array,
  message: RegExp,
  options?: Parameters<typeof decodeImage>[1],
): Promise<void> {
  const error = await decodeImage(bytes, options).then(
    () => assert.fail("decoded a file that should be refused"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof ClassifierError, `not a ClassifierError: ${error}`);
  assert.equal(error.code, "decode_failed");
  assert.equal(error.status, 422);
  assert.match(error.message, message);
}

Deno.test("refinement scans without their first pass are corrupt, refused after one scan", async () => {
  const bytes = refinementWithoutFirstPassJpeg(SIZE, 50);
  await refused(bytes, /^Cannot decode image: the JPEG data is corrupt$/);
  const work = lastJpegWork();
  assert.equal(work.scans, 1, "only the DC scan was decoded");
  assert.equal(work.blockVisits, BLOCKS);
});

Deno.test("a JPEG of more scans than the cap is refused from its markers, before decoding", async () => {
  // The decoder's counters still show the previous decode: it never ran.
  await decodeJpegFast(standardProgressiveJpeg({ width: 8, height: 8 }));
  const before = lastJpegWork();
  for (const bytes of [refinementWithoutFirstPassJpeg(SIZE, 1000), manyScanJpeg(SIZE, 500)]) {
    await refused(bytes, new RegExp(`more than ${JPEG_MAX_SCANS} scans`));
    assert.deepEqual(lastJpegWork(), before);
  }
});

Deno.test("a valid many-scan progression stops at the block-visit budget", async () => {
  await refused(
    manyScanJpeg(SIZE, 60),
    new RegExp(`each 8x8 block more than ${JPEG_VISITS_PER_BLOCK} times`),
  );
  const work = lastJpegWork();
  assert.equal(work.blockBudget, JPEG_VISITS_PER_BLOCK * BLOCKS);
  assert.equal(work.blockVisits, work.blockBudget, "scans up to the budget ran, no more");
  assert.equal(work.scans, JPEG_VISITS_PER_BLOCK + 1, "the scan past it was refused");
});

Deno.test("the decoder's own scan cap holds without the marker check", async () => {
  // Chroma scans visit a tenth of the blocks each: the cap, not the budget, stops them.
  const bytes = manyChromaScanJpeg({ width: 64, height: 32 }, 150);
  await assert.rejects(decodeJpegFast(bytes), /too many scans/);
  const work = lastJpegWork();
  assert.equal(work.scans, JPEG_MAX_SCANS);
  assert.ok(work.blockVisits < work.blockBudget);
  // Under the cap, the same kind of file decodes.
  const fine = await decodeJpegFast(manyChromaScanJpeg({ width: 64, height: 32 }, 90));
  assert.equal(fine.width, 64);
  assert.equal(lastJpegWork().scans, 91);
});

Deno.test("standard and within-budget progressions decode, visiting each block as scanned", async () => {
  const image = await decodeImage(standardProgressiveJpeg(SIZE));
  assert.equal(image.width, 256);
  assert.equal(image.height, 256);
  assert.deepEqual(lastJpegWork(), {
    scans: 6,
    blockVisits: 6 * BLOCKS,
    blockBudget: JPEG_VISITS_PER_BLOCK * BLOCKS,
  });
  const small = await decodeImage(manyScanJpeg({ width: 64, height: 64 }, 14));
  assert.equal(small.width, 64);
  assert.equal(lastJpegWork().scans, 15);
});

Deno.test("a SOF that claims more pixels than the data can hold is refused", async () => {
  await refused(lyingSofJpeg({ width: 4000, height: 4000 }), /JPEG data is truncated/);
  await refused(lyingSofJpeg({ width: 9000, height: 9000 }), /over the 40 megapixel limit/);
});

Deno.test("16-bit and interlaced PNGs at the byte budget: just under decodes, just over is refused", async () => {
  // maxPixels 10,000 -> a byte budget of 40,000; RGBA at 16 bits is 8 bytes a pixel.
  const options = { maxPixels: 10_000 };
  for (const interlaced of [false, true]) {
    const under = png({ width: 70, height: 70, bitDepth: 16, colorType: 6, interlaced });
    const image = await decodeImage(under, options);
    assert.equal(image.width * image.height, 4900);
    await refused(
      png({ width: 71, height: 71, bitDepth: 16, colorType: 6, interlaced }),
      /^Cannot decode image: it is 71x71 with 4 channels of 16 bits \(40328 bytes decoded\), over the 40000 bytes memory limit$/,
      options,
    );
  }
  // An 8-bit image at the pixel limit is within the byte budget.
  const rgba8 = png({ width: 100, height: 100, bitDepth: 8, colorType: 6 });
  assert.equal((await decodeImage(rgba8, options)).width, 100);
});

Deno.test("the issue's 6300x6300 16-bit RGBA PNG is refused from its header at the defaults", async () => {
  const bytes = png({ width: 6300, height: 6300, bitDepth: 16, colorType: 6 });
  assert.ok(bytes.length < 400_000, `${bytes.length} bytes`);
  await refused(
    bytes,
    /6300x6300 with 4 channels of 16 bits \(317\.5 MB decoded\), over the 160 MB/,
  );
});

Deno.test("an IHDR that claims more rows than the data can inflate to is refused", async () => {
  const liar = png({ width: 3000, height: 3000, bitDepth: 8, colorType: 6, rows: 1 });
  await refused(liar, /PNG data is truncated \(\d+ bytes of image data cannot hold 3000x3000/);
});

Deno.test("16-bit PNGs of Paeth rows decode reduced for the model, as a box mean of the full decode", async () => {
  for (const interlaced of [false, true]) {
    const bytes = png({
      width: 1500,
      height: 1100,
      bitDepth: 16,
      colorType: 6,
      interlaced,
      filter: 4,
    });
    const reduced = await decodeImage(bytes, { fitFor: TORCHVISION_PREPROCESSING });
    assert.equal(reduced.reduction?.scale, 2);
    const full = await decodeImage(bytes, { decoder: "full" });
    assert.deepEqual(reduced.data, reduceByBoxMean(full, 2).data);
  }
});
