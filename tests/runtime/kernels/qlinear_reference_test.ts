import assert from "node:assert/strict";
import {
  qconvAccumulateReference,
  qlinearAccumulateReference,
  qlinearOutputReference,
  qlinearReference,
  quantizeLinearReference,
  roundHalfEven,
} from "../../../src/runtime/kernels/mod.ts";

Deno.test("roundHalfEven rounds ties to the even neighbour and everything else to nearest", () => {
  const cases: [number, number][] = [
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [3.5, 4],
    [-0.5, -0],
    [-1.5, -2],
    [-2.5, -2],
    [2.4999999, 2],
    [2.5000001, 3],
    [-2.5000001, -3],
    [1e20, 1e20],
    [4503599627370497, 4503599627370497], // 2^52 + 1: already an integer
  ];
  for (const [v, expected] of cases) assert.equal(roundHalfEven(v), expected, `${v}`);
  assert.ok(Number.isNaN(roundHalfEven(NaN)));
  assert.equal(roundHalfEven(-Infinity), -Infinity);
});

Deno.test("quantizeLinearReference divides in float32, rounds half to even and saturates", () => {
  const x = new Float32Array([0, 0.25, 0.75, 100, -1, -100, Infinity, -Infinity, NaN, -0]);
  assert.deepEqual(Array.from(quantizeLinearReference(x, 0.5, 10)), [
    10,
    10,
    12,
    210,
    8,
    0,
    255,
    0,
    0,
    10,
  ]);
  // 0.3 / 0.1 is 2.9999998 in float32 division but 3.0000000000000004 in float64.
  const third = quantizeLinearReference(new Float32Array([0.3]), 0.1, 0);
  assert.equal(third[0], Math.round(Math.fround(Math.fround(0.3) / Math.fround(0.1))));
  assert.throws(
    () => quantizeLinearReference(x, 0.5, 256),
    /^RangeError: Cannot compute the QuantizeLinear reference: the zero point/,
  );
});

Deno.test("qlinearAccumulateReference subtracts the zero point before multiplying", () => {
  // W: [2, 3], xq: [2, 3]
  const layer = { weights: new Int8Array([1, 2, 3, -1, 0, 127]), m: 2, k: 3 };
  const acc = qlinearAccumulateReference(layer, new Uint8Array([129, 128, 255, 0, 0, 0]), 2, 128);
  assert.deepEqual(Array.from(acc), [382, 16128, -768, -16128]);
});

Deno.test("qlinearOutputReference rounds each step to float32 in the kernel's order", () => {
  const layer = { m: 1, weightScales: new Float32Array([0.1]), bias: new Float32Array([1e-3]) };
  const acc = new Int32Array([16777217]); // 2^24 + 1: not a float32
  const sx = 0.3;
  const expected = Math.fround(
    Math.fround(Math.fround(16777217) * Math.fround(Math.fround(sx) * Math.fround(0.1))) +
      Math.fround(1e-3),
  );
  assert.equal(qlinearOutputReference(layer, acc, sx, false)[0], expected);
});

Deno.test("qlinearReference composes quantize, accumulate and the epilogue", () => {
  const layer = {
    weights: new Int8Array([127, -127]),
    m: 1,
    k: 2,
    weightScales: new Float32Array([1 / 127]),
  };
  // x_q = [255, 128] with s_x = 0.5, z_x = 0: acc = 127 * 255 - 127 * 128 = 16129
  const y = qlinearReference(layer, new Float32Array([127.5, 64]), 1, 0.5, 0, false);
  assert.equal(y[0], Math.fround(16129 * Math.fround(0.5 * Math.fround(1 / 127))));
  assert.throws(
    () => qlinearReference(layer, new Float32Array(3), 1, 1, 0, false),
    /x has 3 values but \[1, 2\] needs 2/,
  );
});

Deno.test("qconvAccumulateReference treats padding as x = 0 (x_q = z_x) and splits channels by group", () => {
  // 2 groups of 1 channel, 1x1 image, 3x3 kernels of ones, pad 1: only the centre tap sees x.
  const layer = {
    weights: new Int8Array(18).fill(1),
    shape: [2, 1, 3, 3] as const,
    weightScales: new Float32Array(2),
    group: 2,
    pads: [1, 1, 1, 1] as const,
  };
  const acc = qconvAccumulateReference(layer, new Uint8Array([110, 95]), [1, 2, 1, 1], 100);
  assert.deepEqual(Array.from(acc), [10, -5]);
});
