import assert from "node:assert/strict";
import { lrnReference } from "../../../src/runtime/kernels/mod.ts";

Deno.test("lrn reference computes the ONNX formula by hand on [1, 3, 1, 1]", () => {
  const x = new Float32Array([1, 2, 3]);
  const y = lrnReference(
    x,
    [1, 3, 1, 1],
    { size: 3, alpha: 3, beta: 1, bias: 1 },
    new Float64Array(3),
  );
  // alpha / size = 1; windows: {0, 1}, {0, 1, 2}, {1, 2}.
  assert.deepEqual(Array.from(y), [1 / (1 + 1 + 4), 2 / (1 + 1 + 4 + 9), 3 / (1 + 4 + 9)]);
});

Deno.test("lrn reference puts the extra channel of an even window above", () => {
  // size 2: floor(1/2) = 0 channels below, ceil(1/2) = 1 above.
  const x = new Float32Array([1, 2, 3]);
  const y = lrnReference(
    x,
    [1, 3, 1, 1],
    { size: 2, alpha: 2, beta: 1, bias: 0 },
    new Float64Array(3),
  );
  assert.deepEqual(Array.from(y), [1 / (1 + 4), 2 / (4 + 9), 3 / 9]);
});

Deno.test("lrn reference keeps images and pixels apart", () => {
  // x: [2, 2, 1, 2]; each (image, pixel) sums over its own channels only.
  const x = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]);
  const y = lrnReference(
    x,
    [2, 2, 1, 2],
    { size: 3, alpha: 3, beta: 0.5, bias: 0 },
    new Float64Array(8),
  );
  const at = (v: number, a: number, b: number) => v / Math.sqrt(a * a + b * b);
  assert.deepEqual(Array.from(y), [
    at(1, 1, 3),
    at(2, 2, 4),
    at(3, 1, 3),
    at(4, 2, 4),
    at(5, 5, 7),
    at(6, 6, 8),
    at(7, 5, 7),
    at(8, 6, 8),
  ]);
});

Deno.test("lrn reference rounds the attributes to float32 as ONNX stores them", () => {
  const x = new Float32Array([1]);
  const y = lrnReference(
    x,
    [1, 1, 1, 1],
    { size: 1, alpha: 0.1, beta: 1, bias: 0.3 },
    new Float64Array(1),
  );
  assert.equal(y[0], 1 / (Math.fround(0.3) + Math.fround(0.1)));
});

Deno.test("lrn reference works in place", () => {
  const x = new Float32Array([1, 2, 3, 4]);
  const expected = lrnReference(x, [1, 4, 1, 1], { size: 3 });
  assert.deepEqual(lrnReference(x, [1, 4, 1, 1], { size: 3 }, x), expected);
});
