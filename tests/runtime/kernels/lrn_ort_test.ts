import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import {
  createLrnKernel,
  type LrnDims,
  type LrnParams,
  lrnReference,
} from "../../../src/runtime/kernels/mod.ts";
import { compareToReference, createOrtLrn, randomTensor } from "./_lrn_helpers.ts";

// One thread: no worker pool to outlive the tests. Read once, before the first session.
ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

// onnxruntime-web's CPU LRN accepts odd sizes only (lrn.h: size_ % 2 == 1).
const CASES: [LrnDims, LrnParams][] = [
  [[1, 96, 55, 55], { size: 5, alpha: 1e-4, beta: 0.75, bias: 1 }],
  [[1, 256, 27, 27], { size: 5, alpha: 1e-4, beta: 0.75, bias: 1 }],
  [[1, 96, 54, 54], { size: 5, alpha: 1, beta: 0.75, bias: 2 }],
  [[2, 7, 5, 7], { size: 3, alpha: 2, beta: 0.5, bias: 1 }],
  [[1, 3, 9, 9], { size: 5, alpha: 1, beta: 1, bias: 1 }],
  [[1, 40, 6, 7], { size: 1, alpha: 0.5, beta: 0.6, bias: 1 }],
  [[1, 50, 7, 5], { size: 35, alpha: 3, beta: 0.75, bias: 1 }],
];

for (const [dims, params] of CASES) {
  Deno.test(`lrn kernel agrees with onnxruntime-web's LRN on [${dims}], ${JSON.stringify(params)}`, async () => {
    const x = randomTensor(dims.reduce((a, b) => a * b, 1), dims[1] * 1000 + params.size);
    const theirs = await createOrtLrn(dims, params);
    try {
      const ours = (await createLrnKernel()).run(x, dims, params);
      const y = await theirs.run(x);
      // Both against the float64 reference, then against each other.
      const expected = lrnReference(x, dims, params, new Float64Array(x.length));
      for (
        const [what, c] of [
          ["onnxruntime-web vs reference", compareToReference(y, expected, dims)],
          ["ours vs onnxruntime-web", compareToReference(ours, y, dims)],
        ] as const
      ) {
        assert.ok(c.ok, `${what}: ${c.report}`);
      }
    } finally {
      await theirs.release();
    }
  });
}

Deno.test("onnxruntime-web refuses even LRN sizes, so those are checked against the reference only", async () => {
  await assert.rejects(createOrtLrn([1, 4, 2, 2], { size: 4 }), /size_ % 2 == 1/);
});
