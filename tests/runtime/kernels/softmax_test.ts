import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { softmaxLastAxis } from "../../../src/runtime/kernels/softmax.ts";
import { createOrtSoftmax, randomFloats } from "./_q_helpers.ts";

ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

Deno.test("softmax over the last axis matches onnxruntime-web's Softmax to 2e-6 relative (and 1e-12 absolute)", async () => {
  const ortSoftmax = await createOrtSoftmax();
  try {
    for (const [n, k, spread] of [[1, 1000, 30], [3, 1000, 2], [2, 7, 100], [1, 1, 1]]) {
      const x = randomFloats(n * k, n * k + spread, -spread, spread);
      const ours = softmaxLastAxis(x, k);
      const theirs = (await ortSoftmax.run(x, [n, k])) as Float32Array;
      for (let i = 0; i < x.length; i++) {
        // onnxruntime computes exp in float32 (MLAS), ours in float64: a few ulps apart.
        assert.ok(
          Math.abs(ours[i] - theirs[i]) <= 2e-6 * theirs[i] + 1e-12,
          `[${n}, ${k}] at ${i}: ours ${ours[i]}, onnxruntime ${theirs[i]}`,
        );
      }
      for (let r = 0; r < n; r++) {
        const sum = ours.subarray(r * k, (r + 1) * k).reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - 1) < 1e-5, `row ${r} sums to ${sum}`);
      }
    }
  } finally {
    await ortSoftmax.release();
  }
});

Deno.test("softmax keeps huge logits finite and writes into out", () => {
  const out = new Float32Array(3);
  const y = softmaxLastAxis(new Float32Array([1000, 1000, -Infinity]), 3, out);
  assert.equal(y, out);
  assert.deepEqual(Array.from(y), [0.5, 0.5, 0]);
  assert.throws(() => softmaxLastAxis(new Float32Array(5), 2), RangeError);
});
