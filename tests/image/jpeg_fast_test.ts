import assert from "node:assert/strict";
import { ClassifierError } from "../../src/errors.ts";
import { decodeImage, preprocess, type PreprocessSpec } from "../../src/image/mod.ts";
import { jpegScaleFor } from "../../src/image/decode.ts";
import {
  _isResident,
  decodeJpegFast,
  JpegFastError,
  type JpegScale,
  resampleResidentWasm,
} from "../../src/image/jpeg_fast.ts";
import { reducedTriangleTaps, triangleTaps } from "../../src/image/_filter.ts";
import { resampleRgb, resampleRgbReference } from "../../src/image/_resample.ts";
import { TORCHVISION_PREPROCESSING } from "../../src/model/manifest.ts";
import { diffStats, fixture } from "./_util.ts";

// Tensors in 0..1 pixel units (no normalization), so differences read as fractions of 255.
function pixelSpec(size: number, crop: number): PreprocessSpec {
  return {
    ...TORCHVISION_PREPROCESSING,
    width: crop,
    height: crop,
    resize: { mode: "shorter_side", size },
    mean: [0, 0, 0],
    std: [1, 1, 1],
  };
}

const SPECS: [string, PreprocessSpec][] = [
  ["256/224", pixelSpec(256, 224)],
  ["128/112", pixelSpec(128, 112)],
  ["64/56", pixelSpec(64, 56)],
  ["32/28", pixelSpec(32, 28)],
  ["direct 96x64", { ...pixelSpec(0, 0), width: 96, height: 64, resize: { mode: "direct" } }],
];

/** Every JPEG fixture the fast decoder handles (jpeg_arithmetic.jpg is the one it does not). */
async function jpegFixtures(): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(new URL("../fixtures/", import.meta.url))) {
    if (e.name.endsWith(".jpg") && e.name !== "jpeg_arithmetic.jpg") names.push(e.name);
  }
  return names.sort();
}

Deno.test("fast JPEG path tensors match full decode + antialiased resize on every fixture", async () => {
  // Acceptance (#13): mean |diff| <= 2/255 and max |diff| <= 24/255 in 0..1 pixel units.
  const lines: string[] = [];
  for (const name of await jpegFixtures()) {
    const bytes = await fixture(name);
    const full = await decodeImage(bytes, { decoder: "full" });
    for (const [label, spec] of SPECS) {
      const fast = await decodeImage(bytes, { fitFor: spec, decoder: "fast" });
      const d = diffStats(preprocess(fast, spec), preprocess(full, spec));
      const scale = full.width / fast.width;
      lines.push(
        `${name} ${label} 1/${scale.toFixed(0)}: mean ${(d.mean * 255).toFixed(3)}/255 ` +
          `max ${(d.max * 255).toFixed(2)}/255`,
      );
      assert.ok(d.mean <= 2 / 255, `${name} ${label}: mean ${d.mean * 255}/255`);
      assert.ok(d.max <= 24 / 255, `${name} ${label}: max ${d.max * 255}/255`);
    }
  }
  if (Deno.env.get("JPEG_FAST_REPORT") === "1") console.log(lines.join("\n"));
});

Deno.test("fast JPEG path picks every DCT scale on the large fixture", async () => {
  const bytes = await fixture("jpeg_large_420.jpg"); // 1600x1067
  const widths: number[] = [];
  for (const size of [512, 256, 128, 64]) {
    const spec = pixelSpec(size, size);
    widths.push((await decodeImage(bytes, { fitFor: spec, decoder: "fast" })).width);
  }
  // 1067 / 2 = 534 < 1.4 * 512: full size; 1067 / 2 >= 1.4 * 256; 1067 / 4 >= 1.4 * 128.
  assert.deepEqual(widths, [1600, 800, 400, 200]);
});

Deno.test("jpegScaleFor keeps the decoded image 1.4 times the resize target", () => {
  const spec = TORCHVISION_PREPROCESSING; // shorter side 256: needs >= 358.4
  assert.equal(jpegScaleFor(4000, 3000, 1, spec), 8); // 500x375
  assert.equal(jpegScaleFor(4032, 3024, 6, spec), 8); // 504x378
  assert.equal(jpegScaleFor(2872, 2872, 1, spec), 8); // ceil(2872 / 8) = 359
  assert.equal(jpegScaleFor(2864, 3000, 1, spec), 4); // 358 at 1/8 is short
  assert.equal(jpegScaleFor(2000, 1500, 6, spec), 4); // 375 short side at 1/4, 188 at 1/8
  assert.equal(jpegScaleFor(640, 480, 1, spec), 1); // 240 at 1/2 is too small
  assert.equal(jpegScaleFor(200, 100, 1, spec), 1); // already smaller: upscaled as before
  const direct: PreprocessSpec = { ...spec, width: 100, height: 50, resize: { mode: "direct" } };
  assert.equal(jpegScaleFor(600, 1200, 1, direct), 4); // 150x300
  assert.equal(jpegScaleFor(600, 1200, 6, direct), 8); // turned: 1200x600 -> 150x75
});

Deno.test("decodeJpegFast output is ceil(size / scale) on both axes", async () => {
  const bytes = await fixture("jpeg_444.jpg"); // 333x250
  for (const scale of [1, 2, 4, 8] as JpegScale[]) {
    const img = await decodeJpegFast(bytes, scale);
    assert.deepEqual([img.width, img.height], [Math.ceil(333 / scale), Math.ceil(250 / scale)]);
    assert.equal(img.data.length, img.width * img.height * 4);
  }
});

Deno.test("a reduced decode is the full decode box-filtered (gray, 4:4:4)", async () => {
  // Exact in real arithmetic; the full decode rounds and clamps each pixel before the
  // mean, the reduced one after it. Clamping is not linear, so colour pixels next to
  // saturation differ more (up to 12 levels seen at 1/2); the mean stays at rounding level.
  const cases: [string, number, number][] = [
    ["camera_gray.jpg", 0.3, 3],
    ["jpeg_gray_progressive.jpg", 0.3, 3],
    ["jpeg_444.jpg", 0.5, 16],
    ["jpeg_444_progressive_restart.jpg", 0.5, 16],
  ];
  for (const [name, meanTol, maxTol] of cases) {
    const bytes = await fixture(name);
    const full = await decodeJpegFast(bytes, 1);
    for (const s of [2, 4, 8] as JpegScale[]) {
      const small = await decodeJpegFast(bytes, s);
      let worst = 0, total = 0, n = 0;
      // Interior cells only: edge cells average fewer real pixels plus padding blocks.
      for (let y = 0; y < Math.floor(full.height / s); y++) {
        for (let x = 0; x < Math.floor(full.width / s); x++) {
          for (let c = 0; c < 3; c++) {
            let sum = 0;
            for (let j = 0; j < s; j++) {
              for (let i = 0; i < s; i++) {
                sum += full.data[((y * s + j) * full.width + x * s + i) * 4 + c];
              }
            }
            const d = Math.abs(sum / (s * s) - small.data[(y * small.width + x) * 4 + c]);
            worst = Math.max(worst, d);
            total += d;
            n++;
          }
        }
      }
      assert.ok(total / n <= meanTol, `${name} 1/${s}: mean ${total / n}`);
      assert.ok(worst <= maxTol, `${name} 1/${s}: worst ${worst}`);
    }
  }
});

Deno.test("decodeJpegFast leaves arithmetic-coded JPEGs to the full decoder", async () => {
  const bytes = await fixture("jpeg_arithmetic.jpg");
  await assert.rejects(() => decodeJpegFast(bytes), (e: unknown) => {
    assert.ok(e instanceof JpegFastError);
    assert.equal(e.reason, "unsupported");
    return true;
  });
  // decodeImage falls back: whatever the full decoder says, the fast path says the same.
  const full = await decodeImage(bytes, { decoder: "full" }).catch((e) => e);
  const fast = await decodeImage(bytes).catch((e) => e);
  if (full instanceof Error) assert.equal(fast.message, full.message);
  else assert.deepEqual(fast, full);
});

Deno.test("decodeJpegFast refuses truncated streams in every mode", async () => {
  for (const name of await jpegFixtures()) {
    const bytes = await fixture(name);
    for (const keep of [0.2, 0.5, 0.8, 0.97]) {
      const cut = bytes.slice(0, Math.floor(bytes.length * keep));
      await assert.rejects(() => decodeJpegFast(cut), (e: unknown) => {
        assert.ok(e instanceof JpegFastError, `${name} ${keep}: ${e}`);
        assert.equal(e.reason, "truncated", `${name} ${keep}`);
        return true;
      });
      await assert.rejects(() => decodeImage(cut, { fitFor: TORCHVISION_PREPROCESSING }), (e) => {
        assert.ok(e instanceof ClassifierError);
        assert.equal(e.code, "decode_failed");
        assert.match(e.message, /^Cannot decode image: the JPEG data is truncated$/);
        return true;
      });
    }
  }
});

Deno.test("decodeJpegFast refuses or survives random corruption without trapping", async () => {
  const bytes = await fixture("jpeg_420_restart.jpg");
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  let refused = 0;
  for (let round = 0; round < 200; round++) {
    const bad = bytes.slice();
    for (let k = 0; k < 1 + (round % 8); k++) bad[next() % bad.length] = next() & 0xff;
    try {
      const img = await decodeJpegFast(bad, ([1, 2, 4, 8] as const)[round % 4]);
      assert.equal(img.data.length, img.width * img.height * 4);
    } catch (e) {
      assert.ok(e instanceof JpegFastError, `round ${round}: ${e}`);
      refused++;
    }
  }
  assert.ok(refused > 0, "some of the corrupted files are refused");
});

Deno.test("fast JPEG path keeps the classifier's top-5 on the real photos", async () => {
  // The synthetic AlexNet (seeded random weights; real weights are not available offline):
  // its top-5 is as sensitive to pixel changes as a trained model's, or more.
  const { syntheticClassifier } = await import("../_helpers.ts");
  const { topK } = await import("../../src/classify/mod.ts");
  const classifier = await syntheticClassifier();
  const spec = TORCHVISION_PREPROCESSING;
  const photos = ["chelsea.jpg", "rocket.jpg", "astronaut_progressive.jpg", "camera_gray.jpg"];
  const seen = new Set<string>();
  for (const name of [...photos, "jpeg_large_420.jpg"]) {
    const bytes = await fixture(name);
    const top5 = async (decoder: "fast" | "full") => {
      const x = preprocess(await decodeImage(bytes, { fitFor: spec, decoder }), spec);
      const [scores] = await classifier.infer(x, 1);
      return topK(scores, 5, []).map((p) => p.index);
    };
    const fast = await top5("fast");
    assert.deepEqual(fast, await top5("full"), name);
    seen.add(fast.join());
  }
  // The check means something only if the model tells the photos apart.
  assert.ok(seen.size >= 3, `the model gives ${seen.size} distinct top-5 lists`);
});

Deno.test("decodeJpegFast gives each image its own pixels while reusing its instance", async () => {
  const [a, b] = [await fixture("chelsea.jpg"), await fixture("camera_gray.jpg")];
  const first = await decodeJpegFast(a);
  const copy = first.data.slice();
  // A failed decode and two more decodes in between must leave the first image untouched.
  await assert.rejects(decodeJpegFast(a.subarray(0, 300)), JpegFastError);
  const other = await decodeJpegFast(b);
  const again = await decodeJpegFast(a);
  assert.deepEqual(first.data, copy);
  assert.deepEqual(again.data, copy);
  assert.notEqual(other.data.buffer, first.data.buffer);
});

Deno.test("decodeJpegFast leaves pixels in its instance until read, and preprocess gives the same tensor", async () => {
  const spec = TORCHVISION_PREPROCESSING;
  for (const [name, scale] of [["chelsea.jpg", 1], ["astronaut_progressive.jpg", 2]] as const) {
    const img = await decodeJpegFast(await fixture(name), scale);
    assert.ok(_isResident(img), `${name}: pixels copied out at decode`);
    const inPlace = preprocess(img, spec); // resampled where the pixels lie
    assert.ok(_isResident(img), `${name}: preprocess copied the pixels out`);
    const data = img.data; // reading them copies them out
    assert.ok(!_isResident(img), name);
    assert.equal(data.length, img.width * img.height * 4, name);
    const copied = { width: img.width, height: img.height, data, reduction: img.reduction };
    assert.deepEqual(inPlace, preprocess(copied, spec), `${name}: tensors differ`);
  }
});

Deno.test("a resident image keeps its own pixels when the instance decodes the next one", async () => {
  const [a, b] = [await fixture("chelsea.jpg"), await fixture("camera_gray.jpg")];
  const first = await decodeJpegFast(a);
  const second = await decodeJpegFast(b); // overwrites the instance's output
  assert.ok(!_isResident(first));
  const spread = { ...second }; // an own enumerable `data`: spreading copies the pixels
  await decodeJpegFast(a);
  const wantA = (await decodeJpegFast(a)).data;
  const wantB = (await decodeJpegFast(b)).data;
  assert.deepEqual(first.data, wantA);
  assert.deepEqual(second.data, wantB);
  assert.deepEqual(spread.data, wantB);
  assert.notEqual(first.data.buffer, wantA.buffer);
  // A resident image resampled after its instance moved on reads its copied pixels.
  const xt = triangleTaps(first.width, 37), yt = triangleTaps(first.height, 29);
  assert.deepEqual(resampleRgb(first, xt, yt), resampleRgbReference(first, xt, yt));
});

Deno.test("resampling a resident image equals the reference bit for bit, crops and reductions too", async () => {
  const full = await decodeJpegFast(await fixture("chelsea.jpg"));
  const xt = triangleTaps(full.width, 341, 58, 224), yt = triangleTaps(full.height, 256, 16, 224);
  const got = resampleResidentWasm(full, [0, full.height], xt, yt);
  assert.ok(got, "the resident kernel did not run");
  assert.deepEqual(got, resampleRgbReference(full, xt, yt));
  const small = await decodeJpegFast(await fixture("chelsea.jpg"), 4);
  const r = small.reduction!;
  const map = { fullSize: r.width, scale: 4, left: 0 };
  const sx = reducedTriangleTaps(small.width, map, 60, 2, 56);
  const sy = reducedTriangleTaps(small.height, { ...map, fullSize: r.height }, 40, -3, 46);
  const rows: [number, number] = [0, small.height];
  const wasm = resampleResidentWasm(small, rows, sx, sy);
  assert.ok(wasm);
  assert.deepEqual(wasm, resampleRgbReference(small, sx, sy));
  // Rows that do not cover the taps: declined, as for copied-in pixels.
  assert.equal(resampleResidentWasm(small, [1, 2], sx, sy), undefined);
});

/** A baseline grayscale JPEG of `width` x `height` mid-grey (128) pixels: every block is DC 0. */
function flatGrayJpeg(width: number, height: number): Uint8Array {
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  // One 1-bit code ("0") per table: DC difference 0, then EOB - two bits per block.
  const table = (tc: number) => [0xff, 0xc4, 0, 20, tc << 4, 1, ...new Array(15).fill(0), 0];
  return new Uint8Array([
    ...[0xff, 0xd8],
    ...[0xff, 0xdb, 0, 67, 0, ...new Array(64).fill(1)],
    ...[0xff, 0xc0, 0, 11, 8, height >> 8, height & 255, width >> 8, width & 255, 1, 1, 0x11, 0],
    ...table(0),
    ...table(1),
    ...[0xff, 0xda, 0, 8, 1, 1, 0, 0, 63, 0],
    ...new Array(Math.ceil(blocks / 4)).fill(0),
    ...[0xff, 0xd9],
  ]);
}

Deno.test("a decode too large for the shared instance leaves it, and the image in it, alone", async () => {
  const small = await decodeJpegFast(await fixture("chelsea.jpg"));
  const big = await decodeJpegFast(flatGrayJpeg(3000, 2000)); // ~50 MB of memory at full size
  assert.ok(_isResident(small), "the large decode went through the shared instance");
  assert.ok(!_isResident(big));
  assert.deepEqual([big.width, big.height], [3000, 2000]);
  assert.ok(big.data.every((v, i) => v === (i % 4 === 3 ? 255 : 128)));
  // The shared instance is still the small image's: it resamples in place.
  const one = {
    start: new Int32Array([0]),
    count: new Int32Array([1]),
    weights: new Float64Array([1]),
    stride: 1,
  };
  assert.ok(resampleResidentWasm(small, [0, 1], one, one));
});
