import assert from "node:assert/strict";
import type { DecodedImage } from "../../src/image/mod.ts";
import { reducedTriangleTaps, type Taps, triangleTaps } from "../../src/image/_filter.ts";
import { resampleRgb, resampleRgbReference } from "../../src/image/_resample.ts";
import { resampleRgbWasm } from "../../src/image/jpeg_fast.ts";
import { randomImage, rng } from "./_util.ts";

// The rows some output row reads, as resampleRgb hands them to the kernel.
function rowsOf(yt: Taps): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (let k = 0; k < yt.length; k++) {
    if (yt.count[k] === 0) continue;
    lo = Math.min(lo, yt.start[k]);
    hi = Math.max(hi, yt.start[k] + yt.count[k]);
  }
  return [lo, hi];
}

// The kernel does the reference's arithmetic step for step: bit-for-bit equal.
function checkExact(img: DecodedImage, xt: Taps, yt: Taps, label: string): void {
  const want = resampleRgbReference(img, xt, yt);
  const got = resampleRgbWasm(img.data, img.width, rowsOf(yt), xt, yt);
  assert.ok(got, `${label}: the WebAssembly kernel did not run`);
  assert.equal(got.length, want.length, label);
  const bad: string[] = [];
  for (let i = 0; i < want.length && bad.length < 5; i++) {
    if (!Object.is(got[i], want[i])) bad.push(`[${i}] ${got[i]} vs ${want[i]}`);
  }
  assert.deepEqual(bad, [], `${label}: first mismatches`);
}

Deno.test("wasm resample equals the reference bit for bit on random images", () => {
  const random = rng(7);
  const pick = (n: number) => 1 + Math.floor(random() * n);
  for (let i = 0; i < 40; i++) {
    const img = randomImage(pick(64), pick(64), random);
    const [w, h] = [pick(64), pick(64)];
    const xt = triangleTaps(img.width, w), yt = triangleTaps(img.height, h);
    checkExact(img, xt, yt, `${img.width}x${img.height} -> ${w}x${h}`);
  }
});

Deno.test("wasm resample equals the reference on crops, padding and reduced taps", () => {
  const random = rng(11);
  const img = randomImage(640, 480, random);
  // torchvision's 256/224 plan for 640x480: resize to 341x256, crop at (58, 16).
  checkExact(img, triangleTaps(640, 341, 58, 224), triangleTaps(480, 256, 16, 224), "crop");
  // A crop larger than the image: padded outputs have no taps and stay 0.
  checkExact(img, triangleTaps(640, 20, -3, 26), triangleTaps(480, 10, -2, 14), "padding");
  // A 1x1 source, and enlarging.
  const dot = randomImage(1, 1, random);
  checkExact(dot, triangleTaps(1, 5), triangleTaps(1, 3), "1x1 -> 5x3");
  checkExact(randomImage(3, 2, random), triangleTaps(3, 17), triangleTaps(2, 9), "3x2 -> 17x9");
  // A 1/8 reduced decode of a 4000x3000 picture (500x375) for the same plan.
  const small = randomImage(500, 375, random);
  const map = (fullSize: number) => ({ fullSize, scale: 8, left: 0 });
  const xt = reducedTriangleTaps(500, map(4000), 341, 58, 224);
  const yt = reducedTriangleTaps(375, map(3000), 256, 16, 224);
  checkExact(small, xt, yt, "reduced 1/8");
});

Deno.test("wasm resample refuses taps outside the rows it is given", () => {
  const img = randomImage(8, 8, rng(3));
  const xt = triangleTaps(8, 4), yt = triangleTaps(8, 4);
  // Rows 2..3 only, while the taps read rows 0..7: the kernel declines, the caller falls back.
  assert.equal(resampleRgbWasm(img.data, 8, [2, 4], xt, yt), undefined);
  assert.deepEqual(resampleRgb(img, xt, yt), resampleRgbReference(img, xt, yt));
});

Deno.test("wasm resample serves a larger image after a smaller one", () => {
  const random = rng(5);
  for (const [w, h] of [[16, 12], [900, 700], [10, 10]]) {
    const img = randomImage(w, h, random);
    checkExact(img, triangleTaps(w, 37), triangleTaps(h, 29), `${w}x${h}`);
  }
});
