import assert from "node:assert/strict";
import { createApp, type ServerState } from "../../src/api/mod.ts";
import { loadClassifier } from "../../src/classify/load.ts";
import { Classifier } from "../../src/classify/classifier.ts";
import { ClassifierError } from "../../src/errors.ts";
import { loadModel } from "../../src/model/store.ts";
import type { Backend } from "../../src/runtime/backend.ts";
import { fixture, writeTinyModel } from "../_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };

async function tinyState(): Promise<ServerState> {
  const paths = await writeTinyModel(64, 48);
  return { classifier: await loadClassifier(paths) };
}

Deno.test({
  name: "healthz is always 200; readyz is 503 while loading and 200 once ready",
  ...t,
  async fn() {
    const state: ServerState = {};
    const app = createApp(state);
    assert.equal((await app.request("/healthz")).status, 200);
    const before = await app.request("/readyz");
    assert.equal(before.status, 503);
    assert.equal((await before.json()).error.code, "not_ready");
    assert.equal((await app.request("/v1/models")).status, 503);
    Object.assign(state, await tinyState());
    const after = await app.request("/readyz");
    assert.equal(after.status, 200);
    assert.equal((await after.json()).model, "tiny-user-model");
  },
});

Deno.test({
  name: "readyz and predict answer 503 not_ready once the backend has stopped for good",
  ...t,
  async fn() {
    const paths = await writeTinyModel(64, 48);
    const model = await loadModel(new URL(`file://${paths.manifest}`));
    const failure = "Cannot classify: the inference worker stopped (boom); restart the server";
    let stopped = false;
    const refuse = () => Promise.reject(new ClassifierError("not_ready", failure));
    const backend: Backend = {
      name: "wasm",
      threads: 1,
      inputShape: [null, 3, 48, 64],
      kernels: { lrn: "ort", int8: "ort" },
      queueDepth: 0,
      get failure() {
        return stopped ? failure : undefined;
      },
      run: refuse,
      capture: refuse,
      release: () => Promise.resolve(),
    };
    const app = createApp({ classifier: new Classifier(model, backend) });
    assert.equal((await app.request("/readyz")).status, 200);
    stopped = true;
    const ready = await app.request("/readyz");
    assert.equal(ready.status, 503);
    const { error } = await ready.json();
    assert.deepEqual([error.code, error.message], ["not_ready", failure]);
    const res = await app.request("/predict", {
      method: "POST",
      headers: { "Content-Type": "image/jpeg" },
      body: await fixture("chelsea.jpg"),
    });
    assert.equal(res.status, 503);
    assert.equal((await res.json()).error.code, "not_ready");
  },
});

Deno.test({
  name: "v1/models describes input, preprocessing, parameters, provenance and backend",
  ...t,
  async fn() {
    const app = createApp(await tinyState());
    const res = await app.request("/v1/models");
    assert.equal(res.status, 200);
    const [model] = (await res.json()).models;
    assert.equal(model.name, "tiny-user-model");
    assert.equal(model.ready, true);
    assert.deepEqual(model.input, {
      name: "pixels",
      shape: [null, 3, 48, 64],
      datatype: "float32",
    });
    assert.deepEqual(model.output, { name: "logits", kind: "logits", classes: 4 });
    assert.equal(model.preprocessing.channelOrder, "BGR");
    assert.equal(model.parameters, 4 * 27 + 4 + 16 + 4);
    assert.equal(model.weights.kind, "user");
    assert.equal(model.weights.notice, undefined);
    assert.equal(model.backend.name, "wasm");
    assert.ok(model.backend.threads >= 1);
  },
});

Deno.test("the upload page is served at / and its assets by name", async () => {
  const app = createApp({});
  const page = await app.request("/");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type")!, /text\/html/);
  assert.match(await page.text(), /<html/i);
});

Deno.test("static serving cannot reach outside static/", async () => {
  const app = createApp({});
  for (
    const path of [
      "/../deno.json",
      "/..%2fdeno.json",
      "/%2e%2e/deno.json",
      "/static/../main.ts",
      "//etc/passwd",
    ]
  ) {
    const res = await app.request(path);
    assert.equal(res.status, 404, path);
    assert.equal((await res.json()).error.code, "not_found");
  }
});

Deno.test("unknown routes and methods answer JSON 404", async () => {
  const app = createApp({});
  const res = await app.request("/nope");
  assert.equal(res.status, 404);
  assert.deepEqual(Object.keys((await res.json()).error), ["code", "message", "request_id"]);
  assert.equal((await app.request("/predict")).status, 404);
});
