import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { ensureSyntheticModel, loadModel } from "../../src/model/store.ts";
import { createWasmBackend } from "../../src/runtime/mod.ts";
import { randomFloats } from "./kernels/_q_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const io = { inputName: "data_0", outputName: "softmaxout_1" };

Deno.test({
  name:
    "the fp32 session on external data pointing into the model gives the same bits as on the model",
  ...t,
  async fn() {
    const model = await loadModel(await ensureSyntheticModel(1));
    const x = randomFloats(2 * 3 * 224 * 224, 5, -2, 2);
    const dims = [2, 3, 224, 224];
    const plain = await ort.InferenceSession.create(model.bytes, { executionProviders: ["wasm"] });
    const expected = (await plain.run({ data_0: new ort.Tensor("float32", x, dims) }))
      .softmaxout_1.data as Float32Array;
    await plain.release();
    const backend = await createWasmBackend(model.bytes, { ...io, releaseModel: true });
    // releaseModel detached the buffer: its memory is gone, the session still runs.
    assert.equal(model.bytes.byteLength, 0);
    const ours = await backend.run(x, dims);
    assert.ok(ours.data.every((v, i) => Object.is(v, expected[i])), "outputs differ");
    await backend.release();
  },
});

Deno.test({
  name: "without releaseModel the caller's model bytes stay intact",
  ...t,
  async fn() {
    const model = await loadModel(await ensureSyntheticModel(1));
    const length = model.bytes.length;
    const backend = await createWasmBackend(model.bytes, io);
    assert.equal(model.bytes.length, length);
    await backend.release();
  },
});
