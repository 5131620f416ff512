import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { ensureSyntheticModel, loadModel } from "../../src/model/store.ts";
import { createWasmBackend } from "../../src/runtime/mod.ts";
import { threadsSettled } from "../../src/runtime/wasm.ts";
import { randomFloats } from "./kernels/_q_helpers.ts";
import { buildQOperatorAlexNet } from "../model/_qoperator_models.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const io = { inputName: "data_0", outputName: "softmaxout_1" };
/** A small QOperator AlexNet (the zoo's structure, narrower), quick to build and run. */
const SMALL = { inputSize: 67, convDivisor: 8, fcWidth: 64, classes: 10, calibration: 2 };

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

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
  name: "without releaseModel the caller's QOperator model bytes stay intact through the rewrite",
  ...t,
  async fn() {
    // QOperator: the one encoding our int8 kernels rewrite, in place when releaseModel is set.
    const m = await buildQOperatorAlexNet(SMALL);
    const before = await sha256(m.bytes);
    const lines: string[] = [];
    const backend = await createWasmBackend(m.bytes, {
      ...io,
      int8: "custom",
      log: (l) => lines.push(l),
    });
    assert.ok(
      lines.some((l) => /^QOperator int8 model rewritten to QDQ/.test(l)),
      lines.join("\n"),
    );
    const out = await backend.run(m.input(3), m.dims);
    assert.equal(out.data.length, SMALL.classes);
    assert.equal(await sha256(m.bytes), before);
    await backend.release();
  },
});

Deno.test({
  name:
    "a model wholly on our kernels answers on one thread at once, then on two once the helpers join, with the same bits",
  ...t,
  async fn() {
    const m = await buildQOperatorAlexNet(SMALL);
    const eager = await createWasmBackend(m.bytes.slice(), {
      ...io,
      int8: "custom",
      threads: 2,
      eagerThreads: true,
    });
    const expected = (await eager.run(m.input(5), m.dims)).data;
    await eager.release();
    const lines: string[] = [];
    const backend = await createWasmBackend(m.bytes, {
      ...io,
      int8: "custom",
      threads: 2,
      releaseModel: true,
      log: (l) => lines.push(l),
    });
    const first = (await backend.run(m.input(5), m.dims)).data.slice();
    await threadsSettled();
    assert.ok(lines.some((l) => /now run on 2 threads/.test(l)), lines.join("\n"));
    // The model's bytes are kept for the helpers' start, then freed.
    assert.equal(m.bytes.byteLength, 0);
    const later = (await backend.run(m.input(5), m.dims)).data;
    assert.ok(first.every((v, i) => Object.is(v, expected[i])), "1 thread differs from 2");
    assert.ok(later.every((v, i) => Object.is(v, expected[i])), "after the swap it differs");
    await backend.release();
  },
});
