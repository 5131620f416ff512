import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { decodeImage, preprocess } from "../../src/image/mod.ts";
import { partitionModel } from "../../src/model/partition.ts";
import { quantizeModel } from "../../src/model/quantize.ts";
import { ensureSyntheticModel, loadModel } from "../../src/model/store.ts";
import { createWasmBackend } from "../../src/runtime/mod.ts";
import { wasmEvaluator } from "../../src/runtime/evaluate.ts";
import { topK } from "../../src/classify/mod.ts";
import { fixture } from "../_helpers.ts";
import { realisticPhotos } from "../_photos.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const PHOTOS = ["chelsea.jpg", "coffee.png", "rocket.jpg"];

async function int8AlexNet() {
  const model = await loadModel(await ensureSyntheticModel(1));
  const calibration = (await realisticPhotos(8, 7)).map((img) =>
    preprocess(img, model.manifest.preprocessing)
  );
  const { bytes } = await quantizeModel(
    model.bytes,
    calibration,
    wasmEvaluator("data_0", [1, 3, 224, 224]),
  );
  return { bytes, spec: model.manifest.preprocessing };
}

Deno.test({
  name: "the int8 AlexNet splits so fc6-fc8 run on our Gemm kernel with their Q/DQ and ReLU",
  ...t,
  async fn() {
    const { bytes } = await int8AlexNet();
    const { parts } = partitionModel(bytes, new Set(["Gemm"]), {
      fuseQdq: () => true,
      foldDequantize: true,
    });
    const kernels = parts.filter((p) => p.kind === "kernel");
    assert.deepEqual(kernels.map((k) => k.kind === "kernel" && k.node.output![0]), [
      "fc6_1",
      "fc7_1",
      "fc8_1",
    ]);
    for (const k of kernels) {
      assert.ok(k.kind === "kernel");
      const ops = k.absorbed.map((n) => n.opType).sort();
      const expected = [
        "DequantizeLinear",
        "DequantizeLinear",
        "DequantizeLinear",
        "QuantizeLinear",
      ];
      if (k.node.output![0] !== "fc8_1") expected.push("Relu");
      assert.deepEqual(ops, expected.sort());
    }
    // The convolutions stay in onnxruntime, with their weights dequantized once.
    const first = parts[0];
    assert.ok(first.kind === "graph" && first.folded);
    // Left: the Q/DQ pairs on the five conv inputs (activations); the weight DQs were folded.
    assert.equal(first.ops.filter((o) => o === "DequantizeLinear").length, 5);
    assert.equal(first.ops.filter((o) => o === "QuantizeLinear").length, 5);
  },
});

Deno.test({
  name:
    "int8 AlexNet on our kernels matches the QDQ graph's ONNX semantics: same top-1, |diff| <= 2e-3",
  ...t,
  async fn() {
    const { bytes, spec } = await int8AlexNet();
    const io = { inputName: "data_0", outputName: "softmaxout_1" };
    const ours = await createWasmBackend(bytes, { ...io, int8: "custom" });
    assert.equal(ours.kernels.int8, "custom");
    // The reference: onnxruntime evaluating every Q/DQ node as written (no graph rewrites).
    const session = await ort.InferenceSession.create(bytes, {
      graphOptimizationLevel: "disabled",
    });
    const theirs = {
      run: async (data: Float32Array, dims: number[]) => ({
        data: (await session.run({ data_0: new ort.Tensor("float32", data, dims) })).softmaxout_1
          .data as Float32Array,
      }),
      release: () => session.release(),
    };
    const batch = new Float32Array(PHOTOS.length * 3 * 224 * 224);
    for (const [i, name] of PHOTOS.entries()) {
      preprocess(await decodeImage(await fixture(name)), spec, batch, i * 3 * 224 * 224);
    }
    const dims = [PHOTOS.length, 3, 224, 224];
    const a = await ours.run(batch, dims), b = await theirs.run(batch, dims);
    let worst = 0;
    for (let i = 0; i < a.data.length; i++) {
      worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
    }
    console.log(`max |diff| ours vs the QDQ reference: ${worst.toExponential(2)}`);
    // Our conv sums are exact integers, the reference sums dequantized floats; the
    // last-bit differences flip a few activations by one step at the next
    // QuantizeLinear, which moves probabilities by up to ~1e-3 (fc layers alone: 1.5e-7).
    assert.ok(worst <= 2e-3, `max |diff| ${worst}`);
    for (let n = 0; n < PHOTOS.length; n++) {
      const order = (x: Float32Array) =>
        topK(x.subarray(n * 1000, (n + 1) * 1000), 5, []).map((p) => p.index);
      // Same top-1; near-tied lower ranks of this synthetic model may swap.
      const [ours5, ref5] = [order(a.data), order(b.data)];
      assert.equal(ours5[0], ref5[0], PHOTOS[n]);
      assert.ok(ours5.filter((i) => ref5.includes(i)).length >= 4, PHOTOS[n]);
    }
    await Promise.all([ours.release(), theirs.release()]);
  },
});

Deno.test({
  name: "a float model gets no int8 kernels: its Conv and Gemm nodes stay in onnxruntime",
  ...t,
  async fn() {
    const model = await loadModel(await ensureSyntheticModel(1));
    const io = { inputName: "data_0", outputName: "softmaxout_1" };
    // The real path: the int8 kernels' own pattern checks reject the float layers.
    const backend = await createWasmBackend(model.bytes, { ...io, int8: "custom", lrn: "ort" });
    assert.deepEqual(backend.kernels, { lrn: "ort", int8: "ort" });
    await backend.release();
  },
});
