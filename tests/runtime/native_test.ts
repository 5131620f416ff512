import assert from "node:assert/strict";
import { createApp } from "../../src/api/mod.ts";
import { topK } from "../../src/classify/mod.ts";
import { loadClassifier } from "../../src/classify/load.ts";
import { ClassifierError } from "../../src/errors.ts";
import { decodeImage, preprocess } from "../../src/image/mod.ts";
import { ensureSyntheticModel, loadModel } from "../../src/model/store.ts";
import { createNativeBackend } from "../../src/runtime/native.ts";
import { createBackend, createWasmBackend } from "../../src/runtime/mod.ts";
import { buildTinyModel, fixture, writeTinyModel } from "../_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const PHOTOS = ["chelsea.jpg", "coffee.png", "rocket.jpg"];

Deno.test({
  name: "native and wasm give the synthetic AlexNet the same top-5 and close probabilities",
  ...t,
  async fn() {
    const model = await loadModel(await ensureSyntheticModel(1));
    const io = { inputName: model.manifest.input.name, outputName: model.manifest.output.name };
    const size = 3 * 224 * 224;
    const batch = new Float32Array(PHOTOS.length * size);
    for (const [i, name] of PHOTOS.entries()) {
      preprocess(
        await decodeImage(await fixture(name)),
        model.manifest.preprocessing,
        batch,
        i * size,
      );
    }
    const dims = [PHOTOS.length, 3, 224, 224];
    const native = await createNativeBackend(model.bytes, { ...io, threads: 1 });
    const a = await native.run(batch.slice(), dims);
    await native.release();
    const wasm = await createWasmBackend(model.bytes, io);
    const b = await wasm.run(batch.slice(), dims);
    await wasm.release();
    assert.deepEqual(a.dims, [PHOTOS.length, 1000]);
    assert.deepEqual(b.dims, [PHOTOS.length, 1000]);
    let worst = 0, first = -1;
    for (let i = 0; i < a.data.length; i++) {
      const d = Math.abs(a.data[i] - b.data[i]);
      if (d > worst) [worst, first] = [d, i];
    }
    console.log(`max |diff| native vs wasm: ${worst.toExponential(2)} at ${first}`);
    assert.ok(
      worst <= 1e-5,
      `max |diff| ${worst} at ${first}: ${a.data[first]} vs ${b.data[first]}`,
    );
    for (let n = 0; n < PHOTOS.length; n++) {
      const row = (x: Float32Array) => x.subarray(n * 1000, (n + 1) * 1000);
      const order = (x: Float32Array) => topK(row(x), 5, []).map((p) => p.index);
      assert.deepEqual(order(a.data), order(b.data), PHOTOS[n]);
    }
  },
});

Deno.test({
  name: "a server on --backend native names it in /v1/models and /predict answers",
  ...t,
  async fn() {
    const paths = await writeTinyModel(64, 48);
    const classifier = await loadClassifier({ ...paths, backend: "native", threads: 1 });
    const app = createApp({ classifier });
    const [model] = (await (await app.request("/v1/models")).json()).models;
    assert.equal(model.backend.name, "native");
    assert.equal(model.backend.threads, 1);
    const res = await app.request("/predict?top_k=4", {
      method: "POST",
      body: await fixture("chelsea.jpg"),
    });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.backend, "native");
    assert.equal(body.predictions.length, 4);
    // The same image on wasm: the same labels in the same order.
    const wasm = await loadClassifier({ ...paths, backend: "wasm" });
    const expected = await wasm.classify(await fixture("chelsea.jpg"), 4);
    assert.deepEqual(
      body.predictions.map((p: { label: string }) => p.label),
      expected.predictions.map((p) => p.label),
    );
    await Promise.all([classifier.release(), wasm.release()]);
  },
});

Deno.test({
  name: "native runs queued at once answer each its own input",
  ...t,
  async fn() {
    const backend = await createNativeBackend(buildTinyModel(8, 8), {
      inputName: "pixels",
      outputName: "logits",
      threads: 1,
    });
    assert.deepEqual(backend.inputShape, [null, 3, 8, 8]);
    const inputs = Array.from({ length: 6 }, (_, i) => new Float32Array(3 * 64).fill(i - 2));
    const alone = [];
    for (const x of inputs) alone.push(Array.from((await backend.run(x, [1, 3, 8, 8])).data));
    const together = await Promise.all(inputs.map((x) => backend.run(x, [1, 3, 8, 8])));
    assert.deepEqual(together.map((o) => Array.from(o.data)), alone);
    assert.equal(backend.queueDepth, 0);
    await backend.release();
  },
});

Deno.test({
  name: "native refuses a model without the named input, and createBackend falls back to wasm",
  ...t,
  async fn() {
    const bytes = buildTinyModel(8, 8);
    await assert.rejects(
      createNativeBackend(bytes, { inputName: "data_0", outputName: "logits" }),
      (e) => e instanceof ClassifierError && /needs input "data_0"/.test(e.message),
    );
    const lines: string[] = [];
    const backend = await createBackend(bytes, {
      inputName: "pixels",
      outputName: "logits",
      backend: "native",
      log: (line) => lines.push(line),
      // A factory table whose native entry fails as a missing addon would.
    }, {
      wasm: createWasmBackend,
      webgpu: () => Promise.reject(new TypeError("unused")),
      native: () => Promise.reject(new TypeError("Cannot load onnxruntime-node: not found")),
    });
    assert.equal(backend.name, "wasm");
    assert.match(
      lines.join("\n"),
      /Cannot start the native backend: .*onnxruntime-node.*using wasm/,
    );
    await backend.release();
  },
});
