import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { loadClassifier } from "../../src/classify/load.ts";
import { createApp } from "../../src/api/mod.ts";
import { decodeImage, preprocess } from "../../src/image/mod.ts";
import { parseManifest } from "../../src/model/manifest.ts";
import { softmax } from "../../src/classify/mod.ts";
import { fixture, TINY_LABELS, writeTinyModel } from "../_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "a user-supplied model and manifest with a 64x48 input classify through /predict",
  ...t,
  async fn() {
    const paths = await writeTinyModel(64, 48);
    const classifier = await loadClassifier(paths);
    const app = createApp({ classifier });
    const bytes = await fixture("chelsea.jpg");
    const res = await app.request("/predict?top_k=4", { method: "POST", body: bytes });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.model, "tiny-user-model");
    assert.deepEqual(
      body.predictions.map((p: { label: string }) => p.label).sort(),
      [...TINY_LABELS].sort(),
    );

    // Same numbers as running the graph directly on the manifest's tensor, softmax applied to logits.
    const manifest = parseManifest(JSON.parse(await Deno.readTextFile(paths.manifest)));
    const spec = manifest.preprocessing;
    // Decoded as the server does: DCT-scaled for this small input.
    const tensor = preprocess(await decodeImage(bytes, { fitFor: spec }), spec);
    assert.equal(tensor.length, 3 * 48 * 64);
    const session = await ort.InferenceSession.create(await Deno.readFile(paths.model));
    const out = await session.run({ pixels: new ort.Tensor("float32", tensor, [1, 3, 48, 64]) });
    const expected = softmax(out.logits.data as Float32Array);
    for (const p of body.predictions) assert.ok(Math.abs(p.score - expected[p.index]) < 1e-6);
    await session.release();
  },
});

Deno.test({
  name: "a model whose input disagrees with its manifest is refused with a clear message",
  ...t,
  async fn() {
    const paths = await writeTinyModel(64, 48);
    const m = JSON.parse(await Deno.readTextFile(paths.manifest));
    m.preprocessing.width = 32;
    await Deno.writeTextFile(paths.manifest, JSON.stringify(m));
    await assert.rejects(
      loadClassifier(paths),
      /input is \[\?,3,48,64\], the manifest says \[N, 3, 48, 32\]/,
    );
  },
});

Deno.test({
  name: "a model without a manifest, or with the wrong tensor names, is refused",
  ...t,
  async fn() {
    const paths = await writeTinyModel(64, 48);
    await assert.rejects(
      loadClassifier({ model: `${paths.dir}/missing.onnx` }),
      /no manifest given/,
    );
    const m = JSON.parse(await Deno.readTextFile(paths.manifest));
    m.input.name = "data_0";
    await Deno.writeTextFile(paths.manifest, JSON.stringify(m));
    await assert.rejects(loadClassifier(paths), /needs input "data_0"/);
  },
});
