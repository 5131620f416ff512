// The 7-bit Conv (wasm/src/qconv7.rs): for weights in -63..63 and uint8 activations, the
// relaxed-SIMD dot block (wasm/relaxed/dot7.wat) and its core-SIMD stand-in give the
// plain reference's sums and outputs bit for bit, and so the int8 GEMM's.
import assert from "node:assert/strict";
import {
  type ConvDims,
  createQConvKernel,
  qconvAccumulateReference,
  qconvReference,
  type QConvWeights,
} from "../../../src/runtime/kernels/mod.ts";
import {
  checkStatus,
  fits7Bits,
  instantiateQ,
  type QExports,
  usesRelaxedDot,
} from "../../../src/runtime/kernels/q_wasm.ts";
import { relaxedSimdAvailable } from "../../../src/runtime/kernels/_relaxed.ts";
import { KernelHelpers } from "../../../src/runtime/kernels/split.ts";
import { createSplitConvKernel } from "../../../src/runtime/kernels/split.ts";
import { mismatches, randomFloats, randomInts } from "./_q_helpers.ts";

type Attrs = Pick<QConvWeights, "group" | "strides" | "pads" | "dilations">;

const size = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/** A layer with 7-bit weights, both ends (-63, 63) included. */
function random7(shape: QConvWeights["shape"], attrs: Attrs, seed: number): QConvWeights {
  const weights = randomInts(Int8Array, size(shape), seed, -63, 63);
  weights[0] = -63;
  weights[weights.length - 1] = 63;
  return {
    weights,
    shape,
    weightScales: randomFloats(shape[0], seed + 1, 1e-4, 0.02),
    bias: randomFloats(shape[0], seed + 2, -1, 1),
    ...attrs,
  };
}

// [W shape, attributes, x dims]: K = C/G * kH * kW around the 16-wide chunks (1, 15, 16,
// 17, 33, 288), M/G around the 4-row blocks, odd pixel counts (an odd last pixel of a
// pair), several tiles, groups, strides, pads, dilations, N > 1.
const CASES: [QConvWeights["shape"], Attrs, ConvDims][] = [
  [[1, 1, 1, 1], {}, [1, 1, 1, 1]],
  [[3, 15, 1, 1], {}, [2, 15, 3, 3]],
  [[5, 16, 1, 1], {}, [1, 16, 1, 3]],
  [[6, 17, 1, 1], { group: 1 }, [1, 17, 5, 5]],
  [[9, 11, 1, 3], { group: 3, pads: [0, 1, 0, 1] }, [1, 33, 4, 5]],
  [[6, 2, 2, 3], { group: 2, strides: [2, 1], pads: [0, 2, 1, 0], dilations: [2, 1] }, [
    1,
    4,
    9,
    8,
  ]],
  [[7, 5, 5, 5], { pads: [4, 4, 4, 4], dilations: [2, 2] }, [1, 5, 3, 4]],
  [[16, 3, 11, 11], { strides: [4, 4] }, [1, 3, 67, 67]], // conv1-like
  [[12, 8, 5, 5], { group: 2, pads: [2, 2, 2, 2] }, [1, 16, 27, 27]], // conv2-like
  // K 288: 170 pixels per tile; 361 pixels = 2 tiles + an odd 21.
  [[6, 32, 3, 3], { group: 2, pads: [1, 1, 1, 1] }, [2, 64, 19, 19]],
];

/** The two instances every case runs on: the relaxed dot block and the stand-in. */
async function instances(): Promise<[string, QExports][]> {
  return [
    ["relaxed dot", await instantiateQ("test", undefined)],
    ["core-SIMD stand-in", await instantiateQ("test", undefined, { relaxed: false })],
  ];
}

Deno.test("Deno's V8 runs the relaxed module and the default instance takes it", async () => {
  assert.equal(await relaxedSimdAvailable(), true);
  const [[, relaxed], [, core]] = await instances();
  assert.equal(usesRelaxedDot(relaxed), true);
  assert.equal(usesRelaxedDot(core), false);
});

for (const [shape, attrs, dims] of CASES) {
  const label = `W [${shape}] ${JSON.stringify(attrs)} on [${dims}]`;
  Deno.test(`7-bit qconv accumulate equals the int32 reference for ${label}`, async () => {
    const layer = random7(shape, attrs, size(shape) + size(dims));
    for (const [name, instance] of await instances()) {
      const kernel = await createQConvKernel({ ...layer, instance });
      for (const z of [0, 77, 128, 255]) {
        const xq = randomInts(Uint8Array, size(dims), z + dims[2], 0, 255);
        xq.fill(0, 0, Math.min(xq.length, 7)); // runs of both saturated ends
        xq.fill(255, Math.max(0, xq.length - 7));
        const expected = qconvAccumulateReference(layer, xq, dims, z);
        assert.equal(mismatches(kernel.accumulate(xq, dims, z), expected), "", `${name}, z ${z}`);
      }
      kernel.release();
    }
  });

  Deno.test(`7-bit qconv run equals the reference and the int8 GEMM for ${label}`, async () => {
    const layer = random7(shape, attrs, 3 * size(shape));
    const int8 = await createQConvKernel({ ...layer, sevenBit: false });
    const x = randomFloats(size(dims), size(dims), -1, 3);
    for (const [name, instance] of await instances()) {
      const kernel = await createQConvKernel({ ...layer, instance });
      for (const [relu, z] of [[false, 60], [true, 0], [true, 255]] as const) {
        const y = kernel.run(x, dims, 3 / 255, z, relu);
        const expected = qconvReference(layer, x, dims, 3 / 255, z, relu);
        assert.equal(mismatches(y, expected), "", `${name}, z ${z}`);
        assert.equal(mismatches(y, int8.run(x, dims, 3 / 255, z, relu)), "", `${name} vs int8`);
      }
      kernel.release();
    }
    int8.release();
  });
}

Deno.test("qgemm_pack7 refuses a weight outside -63..63; fits7Bits tells them apart", async () => {
  const k = await instantiateQ("test");
  const [m, kk] = [3, 20];
  const packed = k.alloc_static(k.qgemm_packed7_bytes(m, kk));
  const src = k.alloc(m * kk);
  const w = randomInts(Int8Array, m * kk, 5, -63, 63);
  new Int8Array(k.memory.buffer, src, m * kk).set(w);
  assert.equal(k.qgemm_pack7(packed, src, m, kk, 0, m), 0);
  for (const bad of [64, -64, 127, -128]) {
    new Int8Array(k.memory.buffer, src + 7, 1).set([bad]);
    assert.throws(() => checkStatus("pack", k.qgemm_pack7(packed, src, m, kk, 0, m)), /-63\.\.63/);
    assert.equal(fits7Bits(Int8Array.from(w, (v, i) => i === 7 ? bad : v)), false);
  }
  assert.equal(fits7Bits(w), true);
});

Deno.test("an int8 layer with one weight of 64 keeps the int8 GEMM and the reference's bits", async () => {
  const layer = random7([8, 4, 3, 3], { pads: [1, 1, 1, 1] }, 9);
  layer.weights[40] = 64;
  const kernel = await createQConvKernel(layer);
  const dims: ConvDims = [1, 4, 6, 7];
  const x = randomFloats(size(dims), 4, -1, 3);
  assert.equal(
    mismatches(kernel.run(x, dims, 0.02, 10, true), qconvReference(layer, x, dims, 0.02, 10, true)),
    "",
  );
  kernel.release();
});

Deno.test(
  "a 7-bit Conv split over 2 Worker helpers equals the reference bit for bit",
  { sanitizeOps: false, sanitizeResources: false },
  async () => {
    const dims: ConvDims = [1, 16, 13, 13];
    const layer = random7([12, 8, 5, 5], { group: 2, pads: [2, 2, 2, 2] }, 11);
    const split = await createSplitConvKernel(layer, new KernelHelpers(2));
    assert.ok(split, "the layer splits");
    try {
      const x = randomFloats(size(dims), 12, -3, 3);
      const expected = qconvReference(layer, x, dims, 0.02, 128, true);
      assert.equal(mismatches(split.run(x, dims, 0.02, 128, true), expected), "");
    } finally {
      split.release();
    }
  },
);
