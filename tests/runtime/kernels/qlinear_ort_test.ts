import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import {
  createQLinearKernel,
  qlinearReference,
  quantizeLinearReference,
} from "../../../src/runtime/kernels/mod.ts";
import {
  createOrtQdqGemm,
  createOrtQuantizeLinear,
  mismatches,
  randomFloats,
  randomInts,
} from "./_q_helpers.ts";

// One thread: no worker pool to outlive the tests. Read once, before the first session.
ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

/** Ties at every half step around 0 and near saturation, and the awkward floats. */
function quantizeInputs(scale: number, zeroPoint: number): Float32Array {
  const s = Math.fround(scale);
  const v: number[] = [0, -0, Infinity, -Infinity, NaN, 3e38, -3e38, 1e-45, -1e-45];
  for (let h = -600; h <= 600; h++) v.push((h / 2) * s); // ties and integers, in units of s
  for (let q = -zeroPoint - 3; q <= 258 - zeroPoint; q++) {
    // Saturation edges, and the neighbours of each tie in float32.
    const tie = Math.fround((q + 0.5) * s);
    v.push(tie, nextFloat32(tie, 1), nextFloat32(tie, -1));
  }
  return Float32Array.from(v);
}

/** The float32 next to `x` upwards (dir 1) or downwards (dir -1). */
function nextFloat32(x: number, dir: 1 | -1): number {
  const f = new Float32Array([x]);
  const u = new Int32Array(f.buffer);
  if (x === 0) return dir * 1e-45;
  u[0] += (x > 0 ? 1 : -1) * dir;
  return f[0];
}

for (const [scale, zeroPoint] of [[0.5, 128], [0.25, 0], [1 / 3, 255], [0.0173, 77], [1, 0]]) {
  Deno.test(`quantize (reference and kernel) matches onnxruntime-web's QuantizeLinear for scale ${scale}, zero point ${zeroPoint}`, async () => {
    const x = quantizeInputs(scale, zeroPoint);
    const theirs = await createOrtQuantizeLinear(x.length, scale, zeroPoint);
    const kernel = await createQLinearKernel({
      weights: new Int8Array(1),
      m: 1,
      k: 1,
      weightScales: new Float32Array([1]),
    });
    try {
      const expected = await theirs.run(x, [x.length]);
      assert.ok(expected instanceof Uint8Array);
      const reference = quantizeLinearReference(x, scale, zeroPoint);
      assert.equal(mismatches(reference, expected), "", "reference vs onnxruntime-web");
      const ours = kernel.quantize(x, scale, zeroPoint);
      assert.equal(mismatches(ours, expected), "", "kernel vs onnxruntime-web");
    } finally {
      await theirs.release();
      kernel.release();
    }
  });
}

Deno.test("quantize rounds ties to even, as onnxruntime-web does", async () => {
  // x / 1 = 0.5, 1.5, 2.5, -0.5, -1.5, -2.5 -> 0, 2, 2, -0, -2, -2 (+ z = 10)
  const x = new Float32Array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5]);
  const theirs = await createOrtQuantizeLinear(x.length, 1, 10);
  try {
    assert.deepEqual(Array.from(await theirs.run(x, [x.length])), [10, 12, 12, 10, 8, 8]);
    assert.deepEqual(Array.from(quantizeLinearReference(x, 1, 10)), [10, 12, 12, 10, 8, 8]);
  } finally {
    await theirs.release();
  }
});

// The QDQ Gemm our quantizer writes, run by onnxruntime-web (float math on the
// dequantized values, or its own int8 path): the same function computed another way.
for (
  const [m, k, n, relu] of [[16, 40, 2, false], [64, 300, 1, true], [10, 9216, 1, true]] as const
) {
  Deno.test(`quantized Gemm kernel agrees with onnxruntime-web's QDQ Gemm for M ${m}, K ${k}, N ${n}${relu ? ", ReLU" : ""}`, async () => {
    const layer = {
      weights: randomInts(Int8Array, m * k, m + k, -127, 127),
      m,
      k,
      weightScales: randomFloats(m, 2, 0.001, 0.02),
      bias: randomFloats(m, 3, -1, 1),
    };
    const x = randomFloats(n * k, 4, -1, 3);
    const [xScale, xZeroPoint] = [4 / 255, 64];
    const theirs = await createOrtQdqGemm(layer, xScale, xZeroPoint, relu);
    const kernel = await createQLinearKernel(layer);
    try {
      const expected = await theirs.run(x, [n, k]);
      const ours = kernel.run(x, n, xScale, xZeroPoint, relu);
      assert.equal(mismatches(ours, qlinearReference(layer, x, n, xScale, xZeroPoint, relu)), "");
      let scale = 0;
      for (const v of expected) scale = Math.max(scale, Math.abs(v));
      for (let i = 0; i < ours.length; i++) {
        assert.ok(
          Math.abs(ours[i] - expected[i]) <= 1e-5 * scale,
          `[${i}]: ours ${ours[i]}, onnxruntime-web ${expected[i]} (max |y| ${scale})`,
        );
      }
    } finally {
      await theirs.release();
      kernel.release();
    }
  });
}
