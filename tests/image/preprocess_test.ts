import assert from "node:assert/strict";
import {
  type DecodedImage,
  decodeImage,
  prepareImage,
  preprocess,
  type PreprocessSpec,
} from "../../src/image/mod.ts";
import { planResize, roundHalfEven } from "../../src/image/_geometry.ts";
import { resizeRgbReference } from "../../src/image/_resize_reference.ts";
import { assertClose, diffStats, fixture, imageFrom, randomImage, rng } from "./_util.ts";

const TORCHVISION: PreprocessSpec = {
  width: 224,
  height: 224,
  resize: { mode: "shorter_side", size: 256 },
  channelOrder: "RGB",
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

// Caffe-style: raw 0..255, per-channel mean subtracted, no scaling, BGR.
const CAFFE_MEAN: Pick<PreprocessSpec, "channelOrder" | "scale" | "mean" | "std"> = {
  channelOrder: "BGR",
  scale: 1,
  mean: [123.68, 116.779, 103.939],
  std: [1, 1, 1],
};

// A 6x4 image whose channels are linear in x and y:
//   R = 40x + 10y,  G = 200 - 10x - 30y,  B = 7 + 20y.
// Resampling with weights that sum to 1 gives a weighted mean, and the
// weighted mean of a linear function is the function at the weighted mean
// position, so each output is f(x̄, ȳ) with x̄, ȳ the tap centroids below.
const ramp = imageFrom(6, 4, (x, y) => [40 * x + 10 * y, 200 - 10 * x - 30 * y, 7 + 20 * y]);
const R = (x: number, y: number) => 40 * x + 10 * y;
const G = (x: number, y: number) => 200 - 10 * x - 30 * y;
const B = (_x: number, y: number) => 7 + 20 * y;

// Shorter side 2: the height 4 becomes 2, the width int(2 * 6 / 4) = 3.
// Both axes shrink by 2, so the triangle spans ±2 input pixels.
// Columns, 6 -> 3 (output i centred at 2i + 1, input j at j + 0.5,
// weight 1 - |j + 0.5 - centre| / 2):
//   i = 0: j = 0, 1, 2 weights .75 .75 .25 (/1.75)   x̄ = (0·3 + 1·3 + 2·1) / 7 = 5/7
//   i = 1: j = 1..4    weights .25 .75 .75 .25 (/2)  x̄ = (1 + 6 + 9 + 4) / 8   = 5/2
//   i = 2: j = 3, 4, 5 weights .25 .75 .75 (/1.75)   x̄ = (3 + 12 + 15) / 7     = 30/7
// Rows, 4 -> 2:
//   o = 0: rows 0, 1, 2 weights .75 .75 .25 (/1.75)  ȳ = 5/7
//   o = 1: rows 1, 2, 3 weights .25 .75 .75 (/1.75)  ȳ = (1 + 6 + 9) / 7 = 16/7
// A 2x2 crop of the 3x2 resize starts at round((3 - 2) / 2) = round(0.5) = 0
// (Python rounds halves to even), so it keeps columns 0 and 1.
const XBAR = [5 / 7, 5 / 2, 30 / 7];
const YBAR = [5 / 7, 16 / 7];

// Written out: f(x̄, ȳ) for the cropped 2x2, rows then columns.
const CROP_R = [35.714286, 107.142857, 51.428571, 122.857143]; // 250/7, 750/7, 360/7, 860/7
const CROP_G = [171.428571, 153.571429, 124.285714, 106.428571]; // 1200/7, 1075/7, 870/7, 745/7
const CROP_B = [21.285714, 21.285714, 52.714286, 52.714286]; // 149/7, 369/7

const crop2x2: PreprocessSpec = {
  ...TORCHVISION,
  width: 2,
  height: 2,
  resize: { mode: "shorter_side", size: 2 },
};

Deno.test("hand-computed crop values follow from the tap centroids", () => {
  const at = (f: (x: number, y: number) => number) =>
    [0, 1].flatMap((y) => [0, 1].map((x) => f(XBAR[x], YBAR[y])));
  assertClose(at(R), CROP_R, { atol: 1e-6 });
  assertClose(at(G), CROP_G, { atol: 1e-6 });
  assertClose(at(B), CROP_B, { atol: 1e-6 });
});

Deno.test("preprocess resizes, crops and normalizes a 6x4 image to hand-computed [0, 1] values", () => {
  // (p / 255 - mean) / std, e.g. R(0, 0) = (35.714286 / 255 - 0.485) / 0.229 = -1.506306.
  const x = preprocess(ramp, crop2x2); // x: [1, 3, 2, 2]
  assertClose(x, [
    ...[-1.506306, -0.283109, -1.237202, -0.014006], // R
    ...[0.965486, 0.652861, 0.140156, -0.172469], // G
    ...[-1.433452, -1.433452, -0.885677, -0.885677], // B
  ], { atol: 2e-6 });
});

Deno.test("preprocess writes BGR planes with mean/std still given in RGB order", () => {
  const x = preprocess(ramp, { ...crop2x2, channelOrder: "BGR" });
  assertClose(x, [
    ...[-1.433452, -1.433452, -0.885677, -0.885677], // B, normalized with mean[2], std[2]
    ...[0.965486, 0.652861, 0.140156, -0.172469], // G
    ...[-1.506306, -0.283109, -1.237202, -0.014006], // R, normalized with mean[0], std[0]
  ], { atol: 2e-6 });
});

Deno.test("preprocess subtracts Caffe BGR means without scaling", () => {
  // p - mean: B - 103.939, G - 116.779, R - 123.68 (e.g. 21.285714 - 103.939 = -82.653286).
  const x = preprocess(ramp, { ...crop2x2, ...CAFFE_MEAN });
  assertClose(x, [
    ...[-82.653286, -82.653286, -51.224714, -51.224714], // B
    ...[54.649571, 36.792429, 7.506714, -10.350429], // G
    ...[-87.965714, -16.537143, -72.251429, -0.822857], // R
  ], { atol: 1e-4 });
});

Deno.test("preprocess with direct resize ignores aspect ratio and does not crop", () => {
  // 6x4 -> 3x2: the same taps as above, all three columns kept.
  const x = preprocess(ramp, {
    ...TORCHVISION,
    width: 3,
    height: 2,
    resize: { mode: "direct" },
    scale: 1,
    mean: [0, 0, 0],
    std: [1, 1, 1],
  });
  assertClose(x, [
    ...[35.714286, 107.142857, 178.571429, 51.428571, 122.857143, 194.285714], // R
    ...[171.428571, 153.571429, 135.714286, 124.285714, 106.428571, 88.571429], // G
    ...[21.285714, 21.285714, 21.285714, 52.714286, 52.714286, 52.714286], // B
  ], { atol: 1e-4 });
});

Deno.test("planResize follows torchvision's Resize(size) and CenterCrop rounding", () => {
  // 4000x3000: int(256 * 4000 / 3000) = 341; left = round(58.5) = 58, not 59.
  assert.deepEqual(planResize(4000, 3000, TORCHVISION), {
    resizedWidth: 341,
    resizedHeight: 256,
    left: 58,
    top: 16,
  });
  // Portrait: the width is shorter.
  assert.deepEqual(planResize(3000, 4000, TORCHVISION), {
    resizedWidth: 256,
    resizedHeight: 341,
    left: 16,
    top: 58,
  });
  // 640x427: int(383.7) = 383 (truncated, not rounded); round(79.5) = 80.
  assert.deepEqual(planResize(640, 427, TORCHVISION), {
    resizedWidth: 383,
    resizedHeight: 256,
    left: 80,
    top: 16,
  });
  // Square: width counts as the shorter side.
  assert.deepEqual(planResize(500, 500, TORCHVISION), {
    resizedWidth: 256,
    resizedHeight: 256,
    left: 16,
    top: 16,
  });
  // Direct: straight to the input size.
  assert.deepEqual(planResize(640, 427, { ...TORCHVISION, resize: { mode: "direct" } }), {
    resizedWidth: 224,
    resizedHeight: 224,
    left: 0,
    top: 0,
  });
  assert.deepEqual([0.5, 1.5, 2.5, 58.5, 59.5, -1.5, 3.2].map(roundHalfEven), [
    0,
    2,
    2,
    58,
    60,
    -2,
    3,
  ]);
});

Deno.test("preprocess equals a full reference resize followed by a crop", () => {
  // The crop is folded into the resize; it must not change a single value.
  const random = rng(17);
  const specs: PreprocessSpec[] = [
    { ...TORCHVISION, width: 11, height: 9, resize: { mode: "shorter_side", size: 13 } },
    { ...TORCHVISION, width: 7, height: 7, resize: { mode: "shorter_side", size: 7 } },
    { ...TORCHVISION, width: 10, height: 6, resize: { mode: "direct" } },
    {
      ...TORCHVISION,
      width: 5,
      height: 8,
      resize: { mode: "shorter_side", size: 9 },
      ...CAFFE_MEAN,
    },
  ];
  for (const [w, h] of [[40, 30], [23, 61], [9, 9], [120, 17]]) {
    const img = randomImage(w, h, random);
    for (const spec of specs) {
      const plan = planResize(w, h, spec);
      const full = resizeRgbReference(img, plan.resizedWidth, plan.resizedHeight); // [rh, rw, 3]
      const expected = new Float32Array(3 * spec.width * spec.height);
      const order = spec.channelOrder === "BGR" ? [2, 1, 0] : [0, 1, 2];
      for (let ch = 0; ch < 3; ch++) {
        const c = order[ch];
        for (let y = 0; y < spec.height; y++) {
          for (let x = 0; x < spec.width; x++) {
            const p = full[((y + plan.top) * plan.resizedWidth + x + plan.left) * 3 + c];
            expected[(ch * spec.height + y) * spec.width + x] = (p * spec.scale - spec.mean[c]) /
              spec.std[c];
          }
        }
      }
      assertClose(preprocess(img, spec), expected, {
        atol: 1e-4,
        rtol: 1e-5,
        label: `${w}x${h} -> ${spec.width}x${spec.height}`,
      });
    }
  }
});

Deno.test("prepareImage matches torchvision's Resize(256) + CenterCrop(224) on Pillow", async () => {
  // coffee_pillow_224.png: Pillow 9.4 resize(BILINEAR) + crop of coffee.png, from
  // torchvision's formulas (see tests/fixtures/make_fixtures.sh). Pillow rounds to
  // 8 bits between its two passes and works in fixed point, so 1 level may differ.
  const coffee = await decodeImage(await fixture("coffee.png"));
  const pillow = await decodeImage(await fixture("coffee_pillow_224.png"));
  const view = prepareImage(coffee, TORCHVISION);
  assert.deepEqual([view.width, view.height], [224, 224]);
  const { max, mean } = diffStats(view.data, pillow.data);
  assert.ok(max <= 1 && mean < 0.25, `max ${max}, mean ${mean}`);

  // The tensor agrees to the same level: 1 / 255 / std.
  const x = preprocess(coffee, TORCHVISION);
  const expected = new Float32Array(x.length);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < 224 * 224; i++) {
      expected[c * 224 * 224 + i] = (pillow.data[i * 4 + c] / 255 - TORCHVISION.mean[c]) /
        TORCHVISION.std[c];
    }
  }
  assertClose(x, expected, { atol: 1 / 255 / 0.224 + 1e-5 });
});

Deno.test("preprocess gives the same tensor for an EXIF-rotated JPEG as for its upright twin", async () => {
  // Twins share DCT blocks (jpegtran); the decoder's IDCT is not exactly
  // transpose-symmetric, leaving at most 0.05 (about 3 grey levels) here.
  const upright = preprocess(await decodeImage(await fixture("chelsea.jpg")), TORCHVISION);
  for (let o = 2; o <= 8; o++) {
    const twin = preprocess(await decodeImage(await fixture(`chelsea_exif${o}.jpg`)), TORCHVISION);
    const { max, mean } = diffStats(twin, upright);
    assert.ok(max <= 0.05 && mean < 2e-3, `orientation ${o}: max ${max}, mean ${mean}`);
  }
});

Deno.test("preprocess fills a batch buffer at an offset and leaves the rest alone", () => {
  const img = randomImage(30, 20, rng(3));
  const spec = {
    ...TORCHVISION,
    width: 8,
    height: 8,
    resize: { mode: "shorter_side" as const, size: 10 },
  };
  const n = 3 * 8 * 8;
  const batch = new Float32Array(2 * n).fill(NaN);
  const returned = preprocess(img, spec, batch, n);
  assert.equal(returned, batch);
  assert.ok(batch.subarray(0, n).every(Number.isNaN));
  assert.deepEqual(batch.subarray(n), preprocess(img, spec));
});

Deno.test("preprocess rejects an output buffer too short for the input", () => {
  const img = randomImage(10, 10, rng(1));
  const spec = { ...TORCHVISION, width: 4, height: 4, resize: { mode: "direct" as const } };
  assert.throws(() => preprocess(img, spec, new Float32Array(47)), RangeError);
  assert.throws(() => preprocess(img, spec, new Float32Array(48), 1), RangeError);
  assert.throws(() => preprocess(img, spec, new Float32Array(96), -1), RangeError);
  assert.throws(
    () => preprocess({ width: 0, height: 3, data: new Uint8Array() }, spec),
    RangeError,
  );
});

Deno.test("preprocess pads with zero pixels when the crop is larger than the resized image", () => {
  // As torchvision's center_crop: pad (4 - 2) // 2 = 1 on the leading sides, fill 0.
  const grey = imageFrom(4, 4, () => [100, 100, 100]);
  const spec = {
    ...TORCHVISION,
    width: 4,
    height: 4,
    resize: { mode: "shorter_side" as const, size: 2 },
    scale: 1,
    mean: [0, 0, 0] as [number, number, number],
    std: [1, 1, 1] as [number, number, number],
  };
  const x = preprocess(grey, spec);
  const plane = [
    [0, 0, 0, 0],
    [0, 100, 100, 0],
    [0, 100, 100, 0],
    [0, 0, 0, 0],
  ].flat();
  assertClose(x, [...plane, ...plane, ...plane], { atol: 1e-4 });
});

Deno.test("preprocess ignores alpha", () => {
  const opaque = randomImage(12, 9, rng(8));
  const seeThrough: DecodedImage = { ...opaque, data: opaque.data.slice() };
  for (let i = 3; i < seeThrough.data.length; i += 4) seeThrough.data[i] = i % 256;
  const spec = {
    ...TORCHVISION,
    width: 5,
    height: 5,
    resize: { mode: "shorter_side" as const, size: 6 },
  };
  assert.deepEqual(preprocess(seeThrough, spec), preprocess(opaque, spec));
});

Deno.test("prepareImage is the preprocess input rounded to bytes", async () => {
  const img = await decodeImage(await fixture("rocket.jpg"));
  const view = prepareImage(img, TORCHVISION);
  const x = preprocess(img, { ...TORCHVISION, scale: 1, mean: [0, 0, 0], std: [1, 1, 1] });
  assert.deepEqual([view.width, view.height, view.data.length], [224, 224, 224 * 224 * 4]);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < 224 * 224; i++) {
      assert.ok(Math.abs(view.data[i * 4 + c] - x[c * 224 * 224 + i]) <= 0.5 + 1e-4);
    }
  }
  for (let i = 3; i < view.data.length; i += 4) assert.equal(view.data[i], 255);
});
