import assert from "node:assert/strict";
import { createQLinearKernel } from "../../../src/runtime/kernels/qlinear_wasm.ts";
import {
  qlinear16AccumulateReference,
  qlinear16Reference,
  type QLinearWeights,
  quantize16Reference,
  scale16Reference,
} from "../../../src/runtime/kernels/qlinear_reference.ts";
import { createSplitLinearKernel, KernelHelpers } from "../../../src/runtime/kernels/split.ts";
import { mismatches, randomFloats, randomInts, seeded } from "./_q_helpers.ts";

/** An int16 layer with seeded random weights in [-127, 127], scales and bias. */
function randomLayer(m: number, k: number, seed: number, bias = true): QLinearWeights {
  return {
    weights: randomInts(Int8Array, m * k, seed, -127, 127),
    m,
    k,
    weightScales: randomFloats(m, seed + 1, 1e-4, 0.02),
    bias: bias ? randomFloats(m, seed + 2, -2, 2) : undefined,
    activations: "int16",
  };
}

/** `length` int16 values uniform in [lo, hi] from `seed`. */
function randomInt16(length: number, seed: number, lo = -32768, hi = 32767): Int16Array {
  const next = seeded(seed);
  return Int16Array.from({ length }, () => lo + Math.floor(next() * (hi - lo + 1)));
}

// [M, K, N]: K around the 16-wide chunks and the 1024-wide exact i32 slices, M around
// the 4-row blocks, AlexNet's fc shapes; N 1 with odd and even counts of blocks (one sample
// runs blocks in pairs).
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 15, 2],
  [5, 17, 3],
  [4, 1023, 1],
  [7, 1024, 2],
  [6, 1025, 2],
  [9, 2049, 3],
  [13, 9216, 2],
  [1000, 4096, 1],
  [9, 2049, 1],
  [21, 1025, 1],
];

for (const [m, k, n] of SHAPES) {
  Deno.test(`qlinear16 accumulate equals the exact reference for M ${m}, K ${k}, N ${n}`, async () => {
    const layer = randomLayer(m, k, m * 7919 + k);
    const kernel = await createQLinearKernel(layer);
    try {
      const xq = randomInt16(n * k, k + n);
      const expected = qlinear16AccumulateReference(layer, xq, n);
      assert.equal(mismatches(kernel.accumulate16(xq, n), expected), "");
    } finally {
      kernel.release();
    }
  });

  Deno.test(`qlinear16 run equals the reference bit for bit for M ${m}, K ${k}, N ${n}`, async () => {
    const layer = randomLayer(m, k, m * 31 + k, m % 2 === 0);
    const kernel = await createQLinearKernel(layer);
    try {
      // Samples of very different ranges: each gets its own scale.
      const x = new Float32Array(n * k);
      for (let i = 0; i < n; i++) {
        const range = [1, 1e-3, 3e4][i % 3];
        x.set(randomFloats(k, k + i, -range, range), i * k);
      }
      for (const relu of [false, true]) {
        const expected = qlinear16Reference(layer, x, n, relu);
        // xScale and xZeroPoint are ignored by an int16 layer.
        assert.equal(mismatches(kernel.run(x, n, 123, 7, relu), expected), "", `relu ${relu}`);
      }
    } finally {
      kernel.release();
    }
  });
}

Deno.test("qlinear16 accumulate is exact where i32 sums would overflow (K = 65536, x = -32768, w = -128)", async () => {
  const k = 65536;
  // Rows: all -128, all 127, alternating -128 / 127, all -128 but the last 127.
  const weights = new Int8Array(4 * k);
  weights.fill(-128, 0, k);
  weights.fill(127, k, 2 * k);
  for (let j = 0; j < k; j++) weights[2 * k + j] = j % 2 ? 127 : -128;
  weights.fill(-128, 3 * k, 4 * k);
  weights[4 * k - 1] = 127;
  const layer = { weights, m: 4, k, weightScales: new Float32Array(4).fill(1) };
  const kernel = await createQLinearKernel(layer);
  try {
    for (const fill of [-32768, 32767, 0, -1]) {
      const xq = new Int16Array(2 * k).fill(fill);
      xq[k + 5] = -fill - 1; // the second sample differs in one place
      const expected = qlinear16AccumulateReference(layer, xq, 2);
      assert.equal(mismatches(kernel.accumulate16(xq, 2), expected), "", `x ${fill}`);
    }
    // 65536 * 32768 * 128 = 2^38: far past 2^31, exact.
    const top = kernel.accumulate16(new Int16Array(k).fill(-32768), 1);
    assert.equal(top[0], 2 ** 38);
    assert.equal(top[1], -127 * 2 ** 31);
  } finally {
    kernel.release();
  }
});

Deno.test("qlinear16 rounds zeros, NaN and infinities as the reference does", async () => {
  const [m, k] = [5, 37];
  const layer = randomLayer(m, k, 11);
  const kernel = await createQLinearKernel(layer);
  try {
    const x = new Float32Array(4 * k);
    // Sample 0: all zeros (scale 1). Sample 1: NaN and +-inf among values, which
    // must not set the scale. Sample 2: one value, the rest 0. Sample 3: tiny values
    // (a subnormal scale).
    const mixed = randomFloats(k, 3, -2, 2);
    mixed[0] = NaN;
    mixed[5] = Infinity;
    mixed[36] = -Infinity;
    x.set(mixed, k);
    x[2 * k + 17] = -0.75;
    x.set(randomFloats(k, 4, -1e-36, 1e-36), 3 * k);
    const { scales } = quantize16Reference(x, 4);
    assert.equal(scales[0], 1);
    assert.equal(scales[1], scale16Reference(mixed.map((v) => Number.isFinite(v) ? v : 0)));
    const y = kernel.run(x, 4, 1, 0, false);
    assert.equal(mismatches(y, qlinear16Reference(layer, x, 4, false)), "");
    // Zeros in: the bias out.
    assert.equal(mismatches(y.subarray(0, m), layer.bias!), "");
  } finally {
    kernel.release();
  }
});

Deno.test("qlinear16 stays within half an int16 step of the float Gemm on the dequantized weights", async () => {
  const [m, k, n] = [64, 9216, 2];
  const layer = randomLayer(m, k, 5);
  const kernel = await createQLinearKernel(layer);
  try {
    const x = randomFloats(n * k, 6, -3, 40);
    const y = kernel.run(x, n, 1, 0, false);
    const { scales } = quantize16Reference(x, n);
    for (let i = 0; i < n; i++) {
      for (let r = 0; r < m; r++) {
        let exact = layer.bias![r], wAbs = 0;
        for (let j = 0; j < k; j++) {
          const w = layer.weights[r * k + j] * layer.weightScales[r];
          exact += x[i * k + j] * w;
          wAbs += Math.abs(w);
        }
        // Each input moves by at most s_n / 2; then a few float32 roundings.
        const bound = wAbs * scales[i] / 2 + 4e-7 * (Math.abs(exact) + wAbs * 40);
        const err = Math.abs(y[i * m + r] - exact);
        assert.ok(err <= bound, `y[${i}, ${r}] = ${y[i * m + r]}, float ${exact}, bound ${bound}`);
      }
    }
  } finally {
    kernel.release();
  }
});

Deno.test("qlinear16 layers check their arguments", async () => {
  const layer = randomLayer(4, 8, 1);
  await assert.rejects(
    () => createQLinearKernel({ ...layer, activations: "int4" as "int16" }),
    TypeError,
  );
  const kernel = await createQLinearKernel(layer);
  try {
    assert.equal(kernel.activations, "int16");
    assert.throws(() => kernel.accumulate16(new Int16Array(7), 1), RangeError);
    assert.throws(
      () => kernel.accumulate16(new Uint8Array(8) as unknown as Int16Array, 1),
      TypeError,
    );
    assert.throws(() => kernel.run(new Float32Array(9), 1, 1, 0, false), RangeError);
    assert.equal(kernel.run(new Float32Array(0), 0, 1, 0, false).length, 0);
  } finally {
    kernel.release();
  }
});

Deno.test("qlinear16 split over two threads gives the single-thread bits", async () => {
  const layer = randomLayer(1000, 4096, 9);
  const single = await createQLinearKernel({ ...layer, weights: layer.weights.slice() });
  const helpers = new KernelHelpers(2);
  const split = await createSplitLinearKernel(layer, helpers);
  assert.ok(split, "a 1000-row layer splits");
  try {
    const x = randomFloats(2 * 4096, 10, -1, 8);
    for (const relu of [false, true]) {
      assert.equal(mismatches(split.run(x, 2, 1, 0, relu), single.run(x, 2, 1, 0, relu)), "");
    }
  } finally {
    split.release();
    single.release();
  }
});
