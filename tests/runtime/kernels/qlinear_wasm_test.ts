import assert from "node:assert/strict";
import {
  createQLinearKernel,
  qlinearAccumulateReference,
  qlinearOutputReference,
  qlinearReference,
  type QLinearWeights,
} from "../../../src/runtime/kernels/mod.ts";
import { mismatches, randomFloats, randomInts } from "./_q_helpers.ts";

/** A layer with seeded random weights in [-127, 127], scales and bias. */
function randomLayer(m: number, k: number, seed: number, bias = true): QLinearWeights {
  return {
    weights: randomInts(Int8Array, m * k, seed, -127, 127),
    m,
    k,
    weightScales: randomFloats(m, seed + 1, 1e-4, 0.02),
    bias: bias ? randomFloats(m, seed + 2, -2, 2) : undefined,
  };
}

// [M, K, N, z_x]: K around the 16-wide chunks, M around the 4-row blocks, AlexNet's fc shapes;
// N 1 with an odd and an even count of blocks (one sample runs blocks in pairs).
const SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 0],
  [3, 1, 2, 128],
  [1, 15, 3, 255],
  [3, 16, 1, 128],
  [5, 17, 2, 0],
  [4, 33, 3, 200],
  [7, 100, 2, 1],
  [1000, 17, 2, 128],
  [13, 9216, 2, 128],
  [4096, 64, 3, 255],
  [1000, 4096, 1, 97],
  [9, 33, 1, 3],
  [13, 9216, 1, 128],
];

for (const [m, k, n, z] of SHAPES) {
  Deno.test(`qlinear accumulate equals the int32 reference for M ${m}, K ${k}, N ${n}, z_x ${z}`, async () => {
    const layer = randomLayer(m, k, m * 7919 + k);
    const kernel = await createQLinearKernel(layer);
    try {
      const xq = randomInts(Uint8Array, n * k, k + n, 0, 255);
      const expected = qlinearAccumulateReference(layer, xq, n, z);
      assert.equal(mismatches(kernel.accumulate(xq, n, z), expected), "");
    } finally {
      kernel.release();
    }
  });
}

Deno.test("qlinear accumulate is exact at the int32 extremes (K = 65536, |x_q - z_x| = 255, w = -128, 127)", async () => {
  const k = 65536;
  // Rows: all 127, all -128, alternating, and all 127 but the last -127.
  const weights = new Int8Array(4 * k);
  weights.fill(127, 0, k);
  weights.fill(-128, k, 2 * k);
  for (let j = 0; j < k; j++) weights[2 * k + j] = j % 2 ? 127 : -128;
  weights.fill(127, 3 * k, 4 * k);
  weights[4 * k - 1] = -127;
  const layer = { weights, m: 4, k, weightScales: new Float32Array(4).fill(1) };
  const kernel = await createQLinearKernel(layer);
  try {
    for (const [fill, z] of [[255, 0], [0, 255], [255, 255], [0, 0], [128, 128]]) {
      const xq = new Uint8Array(2 * k).fill(fill);
      xq[k] = 255 - fill; // second sample differs in one place
      const expected = qlinearAccumulateReference(layer, xq, 2, z);
      assert.equal(mismatches(kernel.accumulate(xq, 2, z), expected), "", `x_q ${fill}, z_x ${z}`);
    }
    // 65536 * 255 * 127 and 65536 * 255 * 128 in magnitude: near 2^31 but inside.
    const top = kernel.accumulate(new Uint8Array(k).fill(255), 1, 0);
    assert.deepEqual(Array.from(top.subarray(0, 2)), [65536 * 255 * 127, -65536 * 255 * 128]);
  } finally {
    kernel.release();
  }
});

Deno.test("qlinear accumulate handles saturated inputs and weights at +-127 for fc6's shape", async () => {
  const [m, k] = [4096, 9216];
  const weights = randomInts(Int8Array, m * k, 6, -127, 127);
  for (let i = 0; i < weights.length; i += 3) weights[i] = i % 2 ? 127 : -127;
  const layer = { weights, m, k, weightScales: new Float32Array(m).fill(1) };
  const kernel = await createQLinearKernel(layer);
  try {
    // Sample 0 all 0, sample 1 all 255, sample 2 random with runs of both ends.
    const xq = new Uint8Array(3 * k);
    xq.fill(255, k, 2 * k);
    xq.set(randomInts(Uint8Array, k, 7, 0, 255), 2 * k);
    xq.fill(0, 2 * k, 2 * k + 100);
    xq.fill(255, 3 * k - 100, 3 * k);
    for (const z of [0, 128, 255]) {
      const expected = qlinearAccumulateReference(layer, xq, 3, z);
      assert.equal(mismatches(kernel.accumulate(xq, 3, z), expected), "", `z_x ${z}`);
    }
  } finally {
    kernel.release();
  }
});

for (const [m, k, n, z] of SHAPES) {
  for (const relu of [false, true]) {
    Deno.test(`qlinear run equals the reference bit for bit for M ${m}, K ${k}, N ${n}, z_x ${z}${relu ? ", ReLU" : ""}`, async () => {
      const layer = randomLayer(m, k, m + 31 * k, m % 2 === 1);
      const kernel = await createQLinearKernel(layer);
      try {
        // Wide enough to saturate at both ends for every zero point.
        const x = randomFloats(n * k, n + k, -1.2, 1.2);
        const xScale = 1 / 200;
        const y = kernel.run(x, n, xScale, z, relu);
        assert.equal(mismatches(y, qlinearReference(layer, x, n, xScale, z, relu)), "");
      } finally {
        kernel.release();
      }
    });
  }
}

Deno.test("qlinear run is within 1e-6 relative of the float64 epilogue on the same sums", async () => {
  const [m, k, n, z] = [1000, 4096, 2, 100];
  const layer = randomLayer(m, k, 99);
  const kernel = await createQLinearKernel(layer);
  try {
    const x = randomFloats(n * k, 5, -0.3, 1.5);
    const xScale = 1.5 / 255;
    const y = kernel.run(x, n, xScale, z, false);
    const acc = kernel.accumulate(kernel.quantize(x, xScale, z), n, z);
    assert.equal(mismatches(y, qlinearOutputReference(layer, acc, xScale, false)), "");
    const sx = Math.fround(xScale);
    for (let i = 0; i < y.length; i++) {
      const r = i % m;
      const product = acc[i] * sx * layer.weightScales[r];
      const exact = product + layer.bias![r];
      const size = Math.abs(product) + Math.abs(layer.bias![r]);
      assert.ok(
        Math.abs(y[i] - exact) <= 1e-6 * size,
        `[${i}]: ${y[i]} vs ${exact} (|terms| ${size})`,
      );
    }
  } finally {
    kernel.release();
  }
});

Deno.test("qlinear run applies ReLU after the bias, and no bias means none", async () => {
  // W: [2, 2], x: [1, 2] quantized with s_x 1, z_x 0 -> x_q = x
  const layer = {
    weights: new Int8Array([1, 1, -1, -1]),
    m: 2,
    k: 2,
    weightScales: new Float32Array([1, 1]),
    bias: new Float32Array([-5, 10]),
  };
  const kernel = await createQLinearKernel(layer);
  const plain = await createQLinearKernel({ ...layer, bias: undefined });
  try {
    const x = new Float32Array([2, 1]);
    assert.deepEqual(Array.from(kernel.run(x, 1, 1, 0, false)), [-2, 7]);
    assert.deepEqual(Array.from(kernel.run(x, 1, 1, 0, true)), [0, 7]);
    assert.deepEqual(Array.from(plain.run(x, 1, 1, 0, false)), [3, -3]);
    assert.deepEqual(Array.from(plain.run(x, 1, 1, 0, true)), [3, 0]);
  } finally {
    kernel.release();
    plain.release();
  }
});

Deno.test("qlinear run writes into out, keeps results across buffer growth, and handles N = 0", async () => {
  const layer = randomLayer(9, 40, 11);
  const kernel = await createQLinearKernel(layer);
  try {
    const small = randomFloats(40, 1);
    const first = kernel.run(small, 1, 0.01, 128, true).slice();
    const big = randomFloats(64 * 40, 2);
    const out = new Float32Array(64 * 9);
    assert.equal(kernel.run(big, 64, 0.01, 128, true, out), out);
    assert.equal(mismatches(out, qlinearReference(layer, big, 64, 0.01, 128, true)), "");
    assert.equal(mismatches(kernel.run(small, 1, 0.01, 128, true), first), "");
    assert.equal(kernel.run(new Float32Array(0), 0, 0.01, 128, true).length, 0);
    assert.equal(kernel.accumulate(new Uint8Array(0), 0, 3).length, 0);
  } finally {
    kernel.release();
  }
});

Deno.test("kernels keep their own weights: fc6-, fc7- and fc8-like layers side by side", async () => {
  const layers = [randomLayer(64, 9216, 1), randomLayer(64, 4096, 2), randomLayer(10, 4096, 3)];
  const kernels = await Promise.all(layers.map((l) => createQLinearKernel(l)));
  try {
    let x = randomFloats(9216, 4, -1, 4);
    for (let i = 0; i < 3; i++) {
      const y = kernels[i].run(x, 1, 4 / 255, 0, i < 2);
      assert.equal(mismatches(y, qlinearReference(layers[i], x, 1, 4 / 255, 0, i < 2)), "");
      x = new Float32Array(layers[(i + 1) % 3].k).map((_, j) => y[j % y.length]);
    }
  } finally {
    for (const k of kernels) k.release();
  }
});

Deno.test("createQLinearKernel rejects inconsistent layers with the action first", async () => {
  const ok = randomLayer(3, 4, 1);
  const cases: [Partial<QLinearWeights>, RegExp][] = [
    [{ m: 0 }, /^RangeError: Cannot create the quantized Gemm kernel: m must be/],
    [{ k: 65537 }, /k must be an integer in \[1, 65536\]/],
    [{ weights: new Int8Array(11) }, /weights must be an Int8Array of m \* k = 12 values/],
    [{ weights: new Uint8Array(12) as unknown as Int8Array }, /weights must be an Int8Array/],
    [{ weightScales: new Float32Array(2) }, /weightScales must be a Float32Array of 3 values/],
    [{ bias: new Float32Array(4) }, /bias must be a Float32Array of 3 values/],
  ];
  for (const [change, message] of cases) {
    await assert.rejects(createQLinearKernel({ ...ok, ...change }), (e: Error) => {
      assert.match(`${e.name}: ${e.message}`, message);
      return true;
    });
  }
});

Deno.test("qlinear run and accumulate reject bad calls, and everything throws after release", async () => {
  const kernel = await createQLinearKernel(randomLayer(3, 4, 1));
  const x = new Float32Array(8);
  assert.throws(
    () => kernel.run(x, 3, 0.1, 0, false),
    /Cannot run the quantized Gemm: x has 8 values but \[3, 4\] needs 12/,
  );
  assert.throws(
    () => kernel.run(x, 2, 0, 0, false),
    /the scale must be a positive finite float32, got 0/,
  );
  assert.throws(() => kernel.run(x, 2, NaN, 0, false), RangeError);
  assert.throws(() => kernel.run(x, 2, 1e-50, 0, false), /positive finite float32/); // 0 in float32
  assert.throws(
    () => kernel.run(x, 2, 0.1, 256, false),
    /the zero point must be an integer in \[0, 255\], got 256/,
  );
  assert.throws(() => kernel.run(x, 2, 0.1, 1.5, false), RangeError);
  assert.throws(
    () => kernel.run(x, 2, 0.1, 0, false, new Float32Array(5)),
    /out must be a Float32Array of 6 values/,
  );
  assert.throws(
    () => kernel.accumulate(new Uint8Array(8), 2, -1),
    /Cannot accumulate the quantized Gemm: the zero point/,
  );
  kernel.release();
  assert.throws(
    () => kernel.run(x, 2, 0.1, 0, false),
    /^TypeError: Cannot run the quantized Gemm: the kernel was released$/,
  );
  assert.throws(() => kernel.accumulate(new Uint8Array(8), 2, 0), /the kernel was released/);
});
