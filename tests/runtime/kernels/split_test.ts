import assert from "node:assert/strict";
import {
  createQConvKernel,
  createQLinearKernel,
  type QConvWeights,
  type QLinearWeights,
} from "../../../src/runtime/kernels/mod.ts";
import {
  convSlices,
  createSplitConvKernel,
  createSplitLinearKernel,
  KernelHelpers,
  linearSlices,
} from "../../../src/runtime/kernels/split.ts";
import type { ConvDims } from "../../../src/runtime/kernels/qconv_reference.ts";
import { mismatches, randomFloats, randomInts } from "./_q_helpers.ts";

const size = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

function randomConv(
  shape: QConvWeights["shape"],
  attrs: Omit<QConvWeights, "weights" | "shape" | "weightScales">,
  seed: number,
): QConvWeights {
  return {
    weights: randomInts(Int8Array, size(shape), seed, -127, 127),
    shape,
    weightScales: randomFloats(shape[0], seed + 1, 1e-4, 0.02),
    bias: randomFloats(shape[0], seed + 2, -1, 1),
    ...attrs,
  };
}

// [W shape, attributes, x dims, threads]: split by groups (2 of 2, 2 of 4 groups), by
// output channels (M not a multiple of 4 or of the threads), 3 threads, batch > 1.
const CONVS: [
  QConvWeights["shape"],
  Omit<QConvWeights, "weights" | "shape" | "weightScales">,
  ConvDims,
  number,
][] = [
  [[12, 8, 5, 5], { group: 2, pads: [2, 2, 2, 2] }, [1, 16, 13, 13], 2], // conv2-like
  [[16, 4, 3, 3], { group: 4, pads: [1, 1, 1, 1] }, [2, 16, 7, 6], 2],
  [[18, 3, 11, 11], { strides: [4, 4] }, [1, 3, 39, 39], 2], // conv1-like, M = 18
  [[13, 6, 3, 3], { pads: [1, 1, 1, 1] }, [3, 6, 5, 5], 3],
  [[9, 2, 1, 1], { group: 3 }, [1, 6, 4, 4], 3],
];

for (const [shape, attrs, dims, threads] of CONVS) {
  Deno.test(
    `a Conv [${shape}] ${
      JSON.stringify(attrs)
    } split over ${threads} threads equals the unsplit kernel bit for bit`,
    { sanitizeOps: false, sanitizeResources: false },
    async () => {
      const layer = randomConv(shape, attrs, size(shape));
      const whole = await createQConvKernel(layer);
      const helpers = new KernelHelpers(threads);
      const split = await createSplitConvKernel(layer, helpers);
      assert.ok(split, "the layer splits");
      try {
        for (const [seed, relu] of [[1, true], [2, false]] as const) {
          const x = randomFloats(size(dims), seed + size(dims), -3, 3);
          const expected = whole.run(x, dims, 0.02, 128, relu);
          const bad = mismatches(split.run(x, dims, 0.02, 128, relu), expected);
          assert.equal(bad, "", bad);
        }
        // A second batch size reuses (and grows) the shared buffers.
        const big: ConvDims = [dims[0] + 1, dims[1], dims[2], dims[3]];
        const x = randomFloats(size(big), 7, -3, 3);
        assert.equal(
          mismatches(split.run(x, big, 0.05, 3, true), whole.run(x, big, 0.05, 3, true)),
          "",
        );
      } finally {
        split.release();
        whole.release();
      }
    },
  );
}

Deno.test(
  "a Gemm split over 2 and 3 threads equals the unsplit kernel bit for bit, batch 1 and 3",
  { sanitizeOps: false, sanitizeResources: false },
  async () => {
    for (const [m, k, threads] of [[37, 100, 2], [4096, 96, 2], [10, 33, 3]]) {
      const layer: QLinearWeights = {
        weights: randomInts(Int8Array, m * k, m + k, -127, 127),
        m,
        k,
        weightScales: randomFloats(m, m, 1e-4, 0.02),
        bias: randomFloats(m, k, -1, 1),
      };
      const whole = await createQLinearKernel(layer);
      const split = await createSplitLinearKernel(layer, new KernelHelpers(threads));
      assert.ok(split);
      try {
        for (const n of [1, 3]) {
          const x = randomFloats(n * k, n + m, -2, 2);
          const bad = mismatches(
            split.run(x, n, 0.01, 100, true),
            whole.run(x, n, 0.01, 100, true),
          );
          assert.equal(bad, "", `[${m}, ${k}] over ${threads}, n ${n}: ${bad}`);
        }
      } finally {
        split.release();
        whole.release();
      }
    }
  },
);

Deno.test("layers split into slices of whole groups or of 4-row blocks, weights not shared", () => {
  const conv = randomConv([96, 3, 11, 11], {}, 1);
  const slices = convSlices(conv, 2)!;
  assert.deepEqual(
    slices.map((s) => [s.m0, s.m1, s.c0, s.c1]),
    [[0, 48], [48, 96]].map((r) => [...r, 0, 3]),
  );
  assert.equal(slices[1].layer.weights.length, 48 * 3 * 11 * 11);
  assert.notEqual(slices[1].layer.weights.buffer, conv.weights.buffer);
  const grouped = convSlices(randomConv([256, 48, 5, 5], { group: 2 }, 2), 2)!;
  assert.deepEqual(grouped.map((s) => [s.m0, s.m1, s.c0, s.c1, s.layer.group]), [
    [0, 128, 0, 48, 1],
    [128, 256, 48, 96, 1],
  ]);
  // 3 groups cannot go to 2 threads evenly, and a grouped conv is not cut inside groups.
  assert.equal(convSlices(randomConv([6, 1, 1, 1], { group: 3 }, 3), 2), undefined);
  const rows = linearSlices({
    weights: new Int8Array(10 * 2),
    m: 10,
    k: 2,
    weightScales: new Float32Array(10),
  }, 3)!;
  assert.deepEqual(rows.map((s) => [s.m0, s.m1]), [[0, 4], [4, 8], [8, 10]]);
  assert.equal(
    linearSlices({ weights: new Int8Array(3), m: 3, k: 1, weightScales: new Float32Array(3) }, 2),
    undefined,
  );
});

Deno.test("one thread splits nothing", async () => {
  const layer = randomConv([8, 2, 3, 3], {}, 4);
  assert.equal(await createSplitConvKernel(layer, new KernelHelpers(1)), undefined);
  assert.throws(() => new KernelHelpers(0), RangeError);
});

Deno.test("kernels sharing one instance give the same bits as their own instances and reuse blocks", async () => {
  const { instantiateQ } = await import("../../../src/runtime/kernels/_q_wasm.ts");
  const instance = await instantiateQ("test");
  const convLayer = randomConv([16, 3, 3, 3], { pads: [1, 1, 1, 1] }, 11);
  const fcLayer: QLinearWeights = {
    weights: randomInts(Int8Array, 10 * 64, 12, -127, 127),
    m: 10,
    k: 64,
    weightScales: randomFloats(10, 13, 1e-3, 1e-2),
  };
  const [conv, fc] = [await createQConvKernel(convLayer), await createQLinearKernel(fcLayer)];
  const [sConv, sFc] = [
    await createQConvKernel({ ...convLayer, instance }),
    await createQLinearKernel({ ...fcLayer, instance }),
  ];
  const dims: ConvDims = [1, 3, 20, 20];
  const x = randomFloats(size(dims), 14, -1, 1), v = randomFloats(64, 15, -1, 1);
  let grown = 0;
  for (let i = 0; i < 3; i++) {
    assert.equal(
      mismatches(sConv.run(x, dims, 0.01, 128, true), conv.run(x, dims, 0.01, 128, true)),
      "",
    );
    assert.equal(mismatches(sFc.run(v, 1, 0.01, 128, false), fc.run(v, 1, 0.01, 128, false)), "");
    if (i === 0) grown = instance.memory.buffer.byteLength;
  }
  // After the first round every call finds its blocks free in the heap: no growth.
  assert.equal(instance.memory.buffer.byteLength, grown);
});
