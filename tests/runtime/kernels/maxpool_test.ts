import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { createMaxPoolKernel } from "../../../src/runtime/kernels/maxpool_wasm.ts";
import {
  type MaxPoolParams,
  maxPoolReference,
  poolGeometry,
} from "../../../src/runtime/kernels/maxpool_reference.ts";
import type { ConvDims } from "../../../src/runtime/kernels/qconv_reference.ts";
import { createOrtMaxPool, mismatches, randomFloats } from "./_q_helpers.ts";

ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

const size = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

// [attributes, x dims]: AlexNet's three pools, ceil mode with a partial last window,
// asymmetric pads, dilations, 1x1 windows, widths around the 4-lane SIMD rows, N > 1,
// dilated windows wide enough for the SIMD window maxima of wasm/src/maxpool.rs, stride-2 rows
// wide enough for its four-output path, with and without a left pad.
const CASES: [MaxPoolParams, ConvDims][] = [
  [{ kernelShape: [3, 3], strides: [2, 2], ceilMode: true }, [1, 96, 54, 54]], // pool1
  [{ kernelShape: [3, 3], strides: [2, 2], ceilMode: true }, [1, 256, 27, 27]], // pool2
  [{ kernelShape: [3, 3], strides: [2, 2], ceilMode: true }, [2, 256, 13, 13]], // pool5
  [{ kernelShape: [3, 3], strides: [2, 2] }, [1, 3, 14, 14]],
  [{ kernelShape: [2, 2], strides: [2, 2], ceilMode: true }, [1, 2, 7, 5]],
  [{ kernelShape: [3, 2], strides: [1, 2], pads: [1, 0, 2, 1] }, [3, 2, 5, 6]],
  [{ kernelShape: [3, 3], dilations: [2, 2], pads: [2, 2, 2, 2] }, [1, 1, 6, 7]],
  [{ kernelShape: [1, 1] }, [1, 3, 1, 9]],
  [{ kernelShape: [2, 3], strides: [1, 3], dilations: [1, 2], pads: [0, 1, 0, 0] }, [1, 2, 4, 19]],
  [{ kernelShape: [2, 3], strides: [2, 2], pads: [0, 1, 1, 0] }, [1, 2, 5, 23]],
  [{ kernelShape: [2, 2], strides: [2, 2] }, [1, 1, 3, 21]],
  [{ kernelShape: [5, 4], strides: [3, 3], pads: [2, 1, 2, 3] }, [1, 4, 11, 10]],
  [{ kernelShape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true }, [1, 2, 8, 9]],
];

for (const [params, dims] of CASES) {
  const label = `${JSON.stringify(params)} on [${dims}]`;
  Deno.test(`MaxPool kernel equals the reference and onnxruntime-web for ${label}`, async () => {
    const x = randomFloats(size(dims), size(dims) + dims[3], -5, 5);
    // Edge values: infinities, a NaN (never wins), signed zeros mixed with negatives: the first
    // plane holds -0s and negatives only, the last +0s and negatives only, so many windows'
    // maxima are a zero of one sign. (A window holding both is a tie the definition leaves
    // open: the reference and the kernel visit taps in different orders there.)
    const plane = dims[2] * dims[3];
    for (let i = 0; i < plane; i++) x[i] = i % 3 === 1 ? -0 : -Math.abs(x[i]);
    for (let i = Math.max(plane, x.length - plane); i < x.length; i++) {
      x[i] = i % 3 === 1 ? 0 : -Math.abs(x[i]);
    }
    x[0] = Infinity;
    x[Math.floor(x.length / 2)] = -Infinity;
    x[x.length - 1] = NaN;
    const kernel = await createMaxPoolKernel(params);
    const ours = kernel.run(x, dims);
    const ref = maxPoolReference(x, dims, params);
    assert.deepEqual(kernel.outputDims(dims), [
      dims[0],
      dims[1],
      ...(() => {
        const g = poolGeometry("test", params, dims);
        return [g.oh, g.ow];
      })(),
    ]);
    const bad = mismatches(ours, ref);
    assert.equal(bad, "", `wasm vs reference:\n${bad}`);
    assert.ok(ref.some((v) => Object.is(v, -0)), "some window's maximum is -0");
    // onnxruntime-web, without the NaN (its NaN handling is not ours to match).
    x[x.length - 1] = 0;
    const ortPool = await createOrtMaxPool(params);
    try {
      const theirs = await ortPool.run(x, [...dims]);
      const bad = mismatches(kernel.run(x, dims), theirs);
      assert.equal(bad, "", `wasm vs onnxruntime-web:\n${bad}`);
    } finally {
      await ortPool.release();
    }
  });
}

Deno.test("MaxPool kernel writes into out, and a NaN never wins a window", async () => {
  const kernel = await createMaxPoolKernel({ kernelShape: [2, 2], strides: [2, 2] });
  const out = new Float32Array(2);
  const y = kernel.run(new Float32Array([NaN, 1, 5, NaN, -2, NaN, NaN, NaN]), [1, 1, 2, 4], out);
  assert.equal(y, out);
  assert.deepEqual(Array.from(y), [1, 5]);
  const all = kernel.run(new Float32Array([NaN, NaN, NaN, NaN]), [1, 1, 2, 2]);
  assert.deepEqual(Array.from(all), [-Infinity]);
});

Deno.test("MaxPool refuses shapes the window does not fit and ceil-mode windows past the input", async () => {
  const kernel = await createMaxPoolKernel({ kernelShape: [3, 3] });
  assert.throws(() => kernel.run(new Float32Array(4), [1, 1, 2, 2]), RangeError);
  assert.throws(() => kernel.run(new Float32Array(5), [1, 1, 3, 3]), RangeError);
  // 2x2 stride 2 with pad 1 at the end, ceil mode: 4 + 1 gives 3 windows, the third would start at 4.
  assert.throws(
    () =>
      poolGeometry("test", {
        kernelShape: [2, 2],
        strides: [2, 2],
        pads: [0, 0, 1, 1],
        ceilMode: true,
      }, [1, 1, 4, 4]),
    RangeError,
  );
  assert.throws(() =>
    poolGeometry("test", { kernelShape: [2, 2], pads: [2, 0, 0, 0] }, [1, 1, 3, 3])
  );
});

Deno.test("MaxPool of an empty batch is empty", async () => {
  const kernel = await createMaxPoolKernel({ kernelShape: [3, 3], strides: [2, 2] });
  assert.equal(kernel.run(new Float32Array(0), [0, 4, 9, 9]).length, 0);
});
