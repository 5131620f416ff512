import assert from "node:assert/strict";
import { applyOrientation, type DecodedImage, isOrientation } from "../../src/image/mod.ts";
import { randomImage, rng } from "./_util.ts";

// A w x h image whose pixel ids (1, 2, 3, ...) are stored in R; G, B, A hold
// other bytes so a mixed-up channel would show.
function labelled(w: number, h: number): DecodedImage {
  const data = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) data.set([i + 1, 100 + i, 200 - i, 255], i * 4);
  return { width: w, height: h, data };
}

function ids(img: DecodedImage): number[][] {
  const rows: number[][] = [];
  for (let y = 0; y < img.height; y++) {
    rows.push([]);
    for (let x = 0; x < img.width; x++) rows[y].push(img.data[(y * img.width + x) * 4]);
  }
  return rows;
}

Deno.test("applyOrientation turns a 3x2 image upright for each of the 8 orientations", () => {
  // Stored pixels:  1 2 3
  //                 4 5 6
  // Expected: what a viewer shows for each EXIF Orientation.
  const expected: Record<number, number[][]> = {
    1: [[1, 2, 3], [4, 5, 6]],
    2: [[3, 2, 1], [6, 5, 4]], // mirrored left-right
    3: [[6, 5, 4], [3, 2, 1]], // rotated 180°
    4: [[4, 5, 6], [1, 2, 3]], // mirrored top-bottom
    5: [[1, 4], [2, 5], [3, 6]], // transposed
    6: [[4, 1], [5, 2], [6, 3]], // rotated 90° clockwise
    7: [[6, 3], [5, 2], [4, 1]], // transversed
    8: [[3, 6], [2, 5], [1, 4]], // rotated 90° counterclockwise
  };
  for (let o = 1; o <= 8; o++) {
    const out = applyOrientation(labelled(3, 2), o);
    assert.deepEqual(ids(out), expected[o], `orientation ${o}`);
    // Whole pixels move: G, B and A follow R.
    for (let i = 0; i < 6; i++) {
      const id = out.data[i * 4] - 1;
      assert.deepEqual([...out.data.subarray(i * 4 + 1, i * 4 + 4)], [100 + id, 200 - id, 255]);
    }
  }
});

// Reference: the EXIF table as steps on nested arrays of pixels (any values).
type Grid = number[][];
const flipX = (g: Grid) => g.map((row) => [...row].reverse());
const flipY = (g: Grid) => [...g].reverse();
const transpose = (g: Grid) => g[0].map((_, x) => g.map((row) => row[x]));
const STEPS: Record<number, ((g: Grid) => Grid)[]> = {
  1: [],
  2: [flipX],
  3: [flipX, flipY],
  4: [flipY],
  5: [transpose],
  6: [transpose, flipX],
  7: [transpose, flipX, flipY],
  8: [transpose, flipY],
};

function referenceOrientation(img: DecodedImage, o: number): DecodedImage {
  const words = new Uint32Array(img.data.slice(0, img.width * img.height * 4).buffer);
  let grid: Grid = [];
  for (let y = 0; y < img.height; y++) {
    grid.push([...words.subarray(y * img.width, (y + 1) * img.width)]);
  }
  for (const step of STEPS[o]) grid = step(grid);
  const data = new Uint8Array(new Uint32Array(grid.flat()).buffer);
  return { width: grid[0].length, height: grid.length, data };
}

Deno.test("applyOrientation matches the flip/transpose reference on random and edge shapes", () => {
  const random = rng(6);
  // Some shapes exceed the 64-pixel tile, leaving partial tiles at the edges.
  const shapes: [number, number][] = [
    [1, 1],
    [1, 7],
    [7, 1],
    [2, 2],
    [5, 3],
    [16, 9],
    [31, 17],
    [64, 64],
    [130, 70],
    [65, 129],
  ];
  for (let i = 0; i < 10; i++) {
    shapes.push([1 + Math.floor(random() * 40), 1 + Math.floor(random() * 40)]);
  }
  for (const [w, h] of shapes) {
    const img = randomImage(w, h, random);
    for (let o = 1; o <= 8; o++) {
      const out = applyOrientation(img, o);
      const ref = referenceOrientation(img, o);
      assert.equal(out.width, ref.width, `${w}x${h} orientation ${o}: width`);
      assert.equal(out.height, ref.height, `${w}x${h} orientation ${o}: height`);
      assert.deepEqual(out.data, ref.data, `${w}x${h} orientation ${o}: pixels`);
    }
  }
});

Deno.test("applyOrientation handles pixel data at an unaligned byte offset", () => {
  const img = randomImage(5, 3, rng(1));
  const backing = new Uint8Array(img.data.length + 1);
  backing.set(img.data, 1);
  const shifted = { ...img, data: backing.subarray(1) };
  for (let o = 2; o <= 8; o++) {
    assert.deepEqual(applyOrientation(shifted, o).data, applyOrientation(img, o).data);
  }
});

Deno.test("applyOrientation is undone by the inverse orientation", () => {
  const img = randomImage(7, 4, rng(2));
  const inverse: Record<number, number> = { 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6 };
  for (let o = 2; o <= 8; o++) {
    const back = applyOrientation(applyOrientation(img, o), inverse[o]);
    assert.deepEqual(back, img, `orientation ${o} then ${inverse[o]}`);
  }
});

Deno.test("applyOrientation leaves its input untouched and returns it as is for 1", () => {
  const img = randomImage(4, 3, rng(3));
  const before = img.data.slice();
  for (let o = 2; o <= 8; o++) assert.notEqual(applyOrientation(img, o).data, img.data);
  assert.deepEqual(img.data, before);
  assert.equal(applyOrientation(img, 1), img);
});

Deno.test("applyOrientation rejects values outside 1-8 and short data", () => {
  const img = randomImage(2, 2, rng(4));
  for (const bad of [0, 9, 1.5, -1, NaN]) {
    assert.throws(() => applyOrientation(img, bad), RangeError);
  }
  assert.throws(
    () => applyOrientation({ width: 3, height: 3, data: new Uint8Array(8) }, 6),
    RangeError,
  );
  assert.equal(isOrientation(8), true);
  assert.equal(isOrientation("6"), false);
});
