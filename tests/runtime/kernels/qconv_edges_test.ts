/**
 * The uint8-activation qconv kernel at its edges: the int32 extremes of its sums and
 * non-finite inputs, against the reference bit for bit (qconv_wasm_test.ts covers shapes,
 * qconv16_test.ts the int16 kernel's edges).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type ConvDims,
  createQConvKernel,
  qconvAccumulateReference,
  qconvReference,
  type QConvWeights,
} from "../../../src/runtime/kernels/mod.ts";
import { mismatches, randomFloats, randomInts } from "./_q_helpers.ts";

Deno.test("qconv accumulate is exact at the int32 extremes (K = 65536, |x_q - z_x| = 255, w = -128, 127)", async () => {
  // W: [4, 4096, 4, 4] on x: [1, 4096, 4, 4]: one output pixel, K = 65536 taps.
  const k = 4096 * 16;
  // Rows: all 127, all -128, alternating, and all 127 but the last -127.
  const weights = new Int8Array(4 * k);
  weights.fill(127, 0, k);
  weights.fill(-128, k, 2 * k);
  for (let j = 0; j < k; j++) weights[2 * k + j] = j % 2 ? 127 : -128;
  weights.fill(127, 3 * k, 4 * k);
  weights[4 * k - 1] = -127;
  const layer: QConvWeights = {
    weights,
    shape: [4, 4096, 4, 4],
    weightScales: new Float32Array(4).fill(1),
  };
  const dims: ConvDims = [1, 4096, 4, 4];
  const kernel = await createQConvKernel(layer);
  try {
    for (const [fill, z] of [[255, 0], [0, 255], [255, 255], [0, 0], [128, 128]]) {
      const xq = new Uint8Array(k).fill(fill);
      xq[k - 1] = 255 - fill; // one tap differs
      const expected = qconvAccumulateReference(layer, xq, dims, z);
      assert.equal(
        mismatches(kernel.accumulate(xq, dims, z), expected),
        "",
        `x_q ${fill}, z_x ${z}`,
      );
    }
    // 65536 * 255 * 127 and 65536 * 255 * 128 in magnitude: near 2^31 but inside.
    const top = kernel.accumulate(new Uint8Array(k).fill(255), dims, 0);
    assert.deepEqual(Array.from(top.subarray(0, 2)), [65536 * 255 * 127, -65536 * 255 * 128]);
    const bottom = kernel.accumulate(new Uint8Array(k), dims, 255);
    assert.deepEqual(Array.from(bottom.subarray(0, 2)), [-65536 * 255 * 127, 65536 * 255 * 128]);
  } finally {
    kernel.release();
  }
});

Deno.test("qconv rounds signed zeros, NaN and infinities as the reference does", async () => {
  const shape: QConvWeights["shape"] = [4, 2, 3, 3];
  const layer: QConvWeights = {
    weights: randomInts(Int8Array, 4 * 2 * 9, 3, -127, 127),
    shape,
    weightScales: randomFloats(4, 4, 1e-3, 0.02),
    bias: randomFloats(4, 5, -1, 1),
    group: 2,
    pads: [1, 1, 1, 1],
  };
  const kernel = await createQConvKernel(layer);
  try {
    const dims: ConvDims = [2, 4, 5, 5];
    const x = randomFloats(2 * 4 * 25, 6, -2, 2);
    for (let i = 0; i < 50; i++) x[i] = i % 2 ? -0 : 0; // image 0, group 0: zeros
    x[60] = NaN;
    x[61] = Infinity;
    x[130] = -Infinity;
    x[131] = NaN;
    x[199] = Infinity;
    for (const [scale, z] of [[2 / 255, 128], [4 / 255, 0], [1 / 255, 255]]) {
      for (const relu of [false, true]) {
        const y = kernel.run(x, dims, scale, z, relu);
        const want = qconvReference(layer, x, dims, scale, z, relu);
        assert.equal(mismatches(y, want), "", `s_x ${scale}, z_x ${z}, relu ${relu}`);
      }
    }
  } finally {
    kernel.release();
  }
});
