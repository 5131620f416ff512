import assert from "node:assert/strict";
import { type DecodedImage, resizeRgba } from "../../src/image/mod.ts";
import { triangleTaps } from "../../src/image/_filter.ts";
import { resampleRgb } from "../../src/image/_resample.ts";
import { resizeRgbReference } from "../../src/image/_resize_reference.ts";
import { assertClose, randomImage, rng } from "./_util.ts";

// The fast kernel works in float; it must agree with the float64 definition
// to within 1e-3 of a grey level (0..255).
const TOLERANCE = { atol: 1e-3, rtol: 0 };

function fastResize(img: DecodedImage, w: number, h: number): Float32Array {
  return resampleRgb(img, triangleTaps(img.width, w), triangleTaps(img.height, h));
}

function checkAgainstReference(img: DecodedImage, w: number, h: number): void {
  assertClose(fastResize(img, w, h), resizeRgbReference(img, w, h), {
    ...TOLERANCE,
    label: `${img.width}x${img.height} -> ${w}x${h}`,
  });
}

Deno.test("fast resize matches the 2-D reference on random images", () => {
  const random = rng(42);
  const pick = (n: number) => 1 + Math.floor(random() * n);
  for (let i = 0; i < 40; i++) {
    checkAgainstReference(randomImage(pick(48), pick(48), random), pick(48), pick(48));
  }
});

Deno.test("fast resize matches the 2-D reference on edge shapes", () => {
  const random = rng(7);
  const cases: [number, number, number, number][] = [
    [1, 1, 1, 1], // 1x1 copy
    [1, 1, 5, 3], // 1x1 upscaled
    [1, 29, 1, 7], // one column
    [29, 1, 7, 1], // one row
    [1, 9, 4, 20], // one column, upscaled both ways
    [13, 9, 13, 9], // same size
    [3, 2, 17, 11], // upscaling by non-integer factors
    [7, 5, 3, 3], // odd sizes
    [97, 3, 1, 1], // everything into one pixel
    [64, 48, 21, 37], // shrink one axis, grow the other
    [40, 30, 39, 29], // shrink by a hair
  ];
  for (const [sw, sh, w, h] of cases) checkAgainstReference(randomImage(sw, sh, random), w, h);
});

Deno.test("fast resize matches the 2-D reference on large downscales", () => {
  const random = rng(9);
  checkAgainstReference(randomImage(200, 150, random), 13, 11);
  checkAgainstReference(randomImage(300, 17, random), 7, 16);
});

Deno.test("triangleTaps weights a 4 -> 2 shrink as the widened triangle says", () => {
  // Scale 2: the triangle spans ±2 input pixels. Output 0 is centred at 1.0;
  // input pixels 0, 1, 2 (centres 0.5, 1.5, 2.5) are 0.25, 0.25, 0.75 pixel-halves
  // away: tri(-0.25) = 0.75, tri(0.25) = 0.75, tri(0.75) = 0.25, sum 1.75
  // -> 3/7, 3/7, 1/7. Output 1 (centre 3.0) mirrors it: 1/7, 3/7, 3/7 on 1, 2, 3.
  const taps = triangleTaps(4, 2);
  assert.deepEqual([...taps.start], [0, 1]);
  assert.deepEqual([...taps.count], [3, 3]);
  const w = (k: number) => [...taps.weights.subarray(k * taps.stride, k * taps.stride + 3)];
  assertClose(w(0), [3 / 7, 3 / 7, 1 / 7], { atol: 1e-12 });
  assertClose(w(1), [1 / 7, 3 / 7, 3 / 7], { atol: 1e-12 });
});

Deno.test("triangleTaps weights always sum to 1", () => {
  for (const [from, to] of [[100, 7], [7, 100], [13, 13], [1, 9], [9, 1], [4000, 224]]) {
    const taps = triangleTaps(from, to);
    for (let k = 0; k < to; k++) {
      let sum = 0;
      for (let t = 0; t < taps.count[k]; t++) sum += taps.weights[k * taps.stride + t];
      assert.ok(Math.abs(sum - 1) < 1e-12, `${from} -> ${to}, output ${k}: sum ${sum}`);
    }
  }
});

Deno.test("triangleTaps gives no taps to outputs outside the resized image", () => {
  const taps = triangleTaps(10, 4, -1, 6); // outputs -1 .. 4 of 0 .. 3
  assert.deepEqual([...taps.count].map((n) => n > 0), [false, true, true, true, true, false]);
});

Deno.test("resizeRgba returns the same pixels for a same-size resize", () => {
  const img = randomImage(9, 5, rng(11));
  const out = resizeRgba(img, 9, 5);
  for (let i = 0; i < img.data.length; i++) {
    assert.equal(out.data[i], i % 4 === 3 ? 255 : img.data[i], `byte ${i}`);
  }
});

Deno.test("resizeRgba keeps a uniform image uniform at any size", () => {
  const img = { width: 37, height: 23, data: new Uint8Array(37 * 23 * 4) };
  for (let i = 0; i < img.data.length; i += 4) img.data.set([12, 130, 251, 90], i);
  for (const [w, h] of [[5, 3], [37, 23], [100, 61], [1, 1]]) {
    const out = resizeRgba(img, w, h);
    for (let i = 0; i < out.data.length; i += 4) {
      assert.deepEqual([...out.data.subarray(i, i + 4)], [12, 130, 251, 255], `${w}x${h}`);
    }
  }
});

Deno.test("resizeRgba rounds the float result to the nearest byte and drops alpha", () => {
  const random = rng(5);
  const img = randomImage(23, 17, random);
  const out = resizeRgba(img, 10, 6);
  const exact = resizeRgbReference(img, 10, 6);
  for (let i = 0, o = 0; i < exact.length; i += 3, o += 4) {
    for (let c = 0; c < 3; c++) {
      assert.ok(Math.abs(out.data[o + c] - exact[i + c]) <= 0.5 + 1e-3, `pixel ${i / 3}`);
    }
    assert.equal(out.data[o + 3], 255);
  }
});

Deno.test("resizeRgba keeps a left-to-right ramp increasing when shrinking", () => {
  const w = 200;
  const img = { width: w, height: 3, data: new Uint8Array(w * 3 * 4) };
  for (let y = 0; y < 3; y++) {
    for (let x = 0; x < w; x++) img.data.set([x, x, x, 255], (y * w + x) * 4);
  }
  const out = resizeRgba(img, 9, 1);
  const row = Array.from({ length: 9 }, (_, x) => out.data[x * 4]);
  for (let x = 1; x < 9; x++) assert.ok(row[x] > row[x - 1], `ramp ${row}`);
  // Pixel x of 9 averages the input around (x + 0.5) * 200 / 9.
  assert.ok(Math.abs(row[4] - (4.5 * 200 / 9 - 0.5)) <= 1, `centre ${row[4]}`);
});

Deno.test("resizeRgba rejects sizes that are not positive integers", () => {
  const img = randomImage(4, 4, rng(1));
  for (const [w, h] of [[0, 4], [4, 0], [2.5, 4], [-1, 2], [NaN, 3]]) {
    assert.throws(() => resizeRgba(img, w, h), RangeError, `${w}x${h}`);
  }
  assert.throws(
    () => resizeRgba({ width: 4, height: 4, data: new Uint8Array(10) }, 2, 2),
    RangeError,
  );
});
