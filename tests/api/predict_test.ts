import assert from "node:assert/strict";
import { createApp, type ServerState } from "../../src/api/mod.ts";
import { fixture, syntheticClassifier } from "../_helpers.ts";

const LIMIT = 256 * 1024;
const t = { sanitizeOps: false, sanitizeResources: false };

/** A request builder: each form of /predict, given the image bytes. */
type Form = (bytes: Uint8Array<ArrayBuffer>) => { path: string; init: RequestInit };

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

const FORMS: Record<string, Form> = {
  "raw body": (bytes) => ({
    path: "/predict",
    init: { method: "POST", headers: { "content-type": "image/jpeg" }, body: bytes },
  }),
  "multipart field image": (bytes) => {
    const form = new FormData();
    form.append("image", new Blob([bytes as BlobPart]), "photo.jpg");
    return { path: "/predict", init: { method: "POST", body: form } };
  },
  "JSON base64": (bytes) => ({
    path: "/predict",
    init: {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ image: base64(bytes) }),
    },
  }),
};

/** Runs `fn` against the app through app.request and through a real loopback socket. */
async function bothWays(
  fn: (send: (path: string, init?: RequestInit) => Promise<Response>) => Promise<void>,
) {
  const state: ServerState = { classifier: await syntheticClassifier() };
  const app = createApp(state, { maxBodyBytes: LIMIT });
  await fn((path, init) => Promise.resolve(app.request(path, init)));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  try {
    await fn((path, init) => fetch(`http://127.0.0.1:${server.addr.port}${path}`, init));
  } finally {
    await server.shutdown();
  }
}

Deno.test({
  name: "every request form gives the same top-5 with timings, via app.request and over HTTP",
  ...t,
  async fn() {
    const bytes = await fixture("chelsea.jpg");
    const answers: unknown[] = [];
    await bothWays(async (send) => {
      for (const [form, build] of Object.entries(FORMS)) {
        const { path, init } = build(bytes);
        const res = await send(path, init);
        assert.equal(res.status, 200, form);
        assert.match(res.headers.get("content-type")!, /application\/json/);
        const body = await res.json();
        assert.equal(body.model, "alexnet-synthetic");
        assert.equal(body.backend, "wasm");
        assert.equal(body.weights.kind, "synthetic");
        assert.match(body.weights.notice, /not meaningful/);
        assert.equal(body.predictions.length, 5);
        const scores = body.predictions.map((p: { score: number }) => p.score);
        assert.deepEqual(scores, [...scores].sort((a, b) => b - a), "sorted by score");
        for (const key of ["decode", "preprocess", "inference", "total"]) {
          assert.ok(body.timings_ms[key] >= 0, key);
        }
        assert.ok(body.timings_ms.total >= body.timings_ms.inference);
        answers.push(
          body.predictions.map((p: { index: number; label: string }) => [p.index, p.label]),
        );
      }
    });
    assert.equal(answers.length, 6);
    for (const a of answers) assert.deepEqual(a, answers[0]);
  },
});

Deno.test({
  name: "top_k comes from the query or the body and is bounded to 1..1000",
  ...t,
  async fn() {
    const bytes = await fixture("chelsea.jpg");
    await bothWays(async (send) => {
      const q = await send("/predict?top_k=3", FORMS["raw body"](bytes).init);
      assert.equal((await q.json()).predictions.length, 3);
      const form = new FormData();
      form.append("image", new Blob([bytes as BlobPart]));
      form.append("top_k", "7");
      const f = await send("/predict", { method: "POST", body: form });
      assert.equal((await f.json()).predictions.length, 7);
      const j = await send("/predict", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ image: base64(bytes), top_k: 1000 }),
      });
      const all = await j.json();
      assert.equal(all.predictions.length, 1000);
      const sum = all.predictions.reduce((a: number, p: { score: number }) => a + p.score, 0);
      assert.ok(Math.abs(sum - 1) < 1e-3, `probabilities sum to ${sum}`);
      for (const bad of ["0", "1001", "2.5", "five", "-1"]) {
        const res = await send(`/predict?top_k=${bad}`, FORMS["raw body"](bytes).init);
        assert.equal(res.status, 400, `top_k=${bad}`);
        assert.equal((await res.json()).error.code, "bad_request");
      }
    });
  },
});

async function expectError(res: Response, status: number, code: string, what: string) {
  assert.equal(res.status, status, what);
  const body = await res.json();
  assert.equal(body.error.code, code, what);
  assert.equal(typeof body.error.message, "string");
  assert.doesNotMatch(body.error.message, /\/work|at .*\.ts:\d+|Error:/, "no paths or stacks");
}

Deno.test({
  name: "errors: 400 malformed, 413 over the limit, 415 not an image, 422 broken image",
  ...t,
  async fn() {
    const jpeg = await fixture("chelsea.jpg");
    const text = new TextEncoder().encode("hello, this is not an image at all");
    await bothWays(async (send) => {
      const post = (body: BodyInit, type?: string) =>
        send("/predict", { method: "POST", body, headers: type ? { "content-type": type } : {} });
      await expectError(
        await post(new Uint8Array(0), "image/png"),
        400,
        "bad_request",
        "empty body",
      );
      await expectError(
        await post("{not json", "application/json"),
        400,
        "bad_request",
        "bad JSON",
      );
      await expectError(
        await post('{"image": 5}', "application/json"),
        400,
        "bad_request",
        "no base64",
      );
      await expectError(
        await post('{"image": "***"}', "application/json"),
        400,
        "bad_request",
        "bad base64",
      );
      const noField = new FormData();
      noField.append("picture", new Blob([jpeg as BlobPart]));
      await expectError(await post(noField), 400, "bad_request", "no image field");
      const twoFiles = new FormData();
      twoFiles.append("image", new Blob([jpeg as BlobPart]));
      twoFiles.append("image", new Blob([jpeg as BlobPart]));
      await expectError(await post(twoFiles), 400, "bad_request", "two files");
      await expectError(
        await post("--x\r\nbroken", "multipart/form-data; boundary=x"),
        400,
        "bad_request",
        "broken multipart",
      );

      const big = new Uint8Array(LIMIT + 1);
      big.set(jpeg.subarray(0, 16));
      await expectError(await post(big, "image/jpeg"), 413, "payload_too_large", "over the limit");
      // Without Content-Length the limit holds while streaming.
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 5; i++) controller.enqueue(new Uint8Array(LIMIT / 4));
          controller.close();
        },
      });
      await expectError(
        await post(stream, "image/jpeg"),
        413,
        "payload_too_large",
        "streamed over",
      );

      // The type comes from the magic bytes: a JPEG content type on text is still 415.
      await expectError(
        await post(text, "image/jpeg"),
        415,
        "unsupported_media_type",
        "text as jpeg",
      );
      await expectError(await post(text, "text/plain"), 415, "unsupported_media_type", "text");
      await expectError(
        await post(jpeg.subarray(0, 600), "image/jpeg"),
        422,
        "decode_failed",
        "truncated jpeg",
      );
      // And a real JPEG labelled as text still classifies.
      assert.equal((await post(jpeg, "text/plain")).status, 200);
    });
  },
});

Deno.test({
  name: "predict answers 503 until the model is ready",
  ...t,
  async fn() {
    const state: ServerState = {};
    const app = createApp(state);
    const init = FORMS["raw body"](await fixture("chelsea.jpg")).init;
    await expectError(await app.request("/predict", init), 503, "not_ready", "loading");
    state.loadError = "model file missing";
    const res = await app.request("/predict", init);
    assert.equal(res.status, 503);
    assert.match((await res.json()).error.message, /failed to load/);
    state.classifier = await syntheticClassifier();
    state.loadError = undefined;
    assert.equal(
      (await app.request("/predict", FORMS["raw body"](await fixture("chelsea.jpg")).init)).status,
      200,
    );
  },
});

Deno.test({
  name: "concurrent requests are all answered correctly",
  ...t,
  async fn() {
    const state: ServerState = { classifier: await syntheticClassifier() };
    const app = createApp(state);
    const bytes = await fixture("chelsea.jpg");
    const single = await (await app.request("/predict", FORMS["raw body"](bytes).init)).json();
    const many = await Promise.all(
      Array.from(
        { length: 6 },
        async () => (await app.request("/predict", FORMS["raw body"](bytes).init)).json(),
      ),
    );
    for (const body of many) assert.deepEqual(body.predictions, single.predictions);
  },
});
