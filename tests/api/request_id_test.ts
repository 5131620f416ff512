import assert from "node:assert/strict";
import { createApp, REQUEST_ID_HEADER, type ServerState } from "../../src/api/mod.ts";
import { loadClassifier } from "../../src/classify/load.ts";
import { fixture, writeTinyModel } from "../_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function tinyState(): Promise<ServerState> {
  return { classifier: await loadClassifier(await writeTinyModel(64, 48)) };
}

/** One request of each kind the app answers, with its expected status. */
const KINDS: [string, string, RequestInit | undefined, number][] = [
  ["health", "/healthz", undefined, 200],
  ["page", "/", undefined, 200],
  ["metrics", "/metrics", undefined, 200],
  ["models", "/v1/models", undefined, 200],
  ["not found", "/nope", undefined, 404],
  ["empty body", "/predict", { method: "POST", body: new Uint8Array(0) }, 400],
  ["too large", "/predict", { method: "POST", body: new Uint8Array(65 * 1024) }, 413],
  ["not an image", "/predict", { method: "POST", body: "hello" }, 415],
];

Deno.test({
  name: "every answer carries a fresh X-Request-Id, and error bodies echo it",
  ...t,
  async fn() {
    const app = createApp(await tinyState(), { maxBodyBytes: 64 * 1024 });
    const ok = await app.request("/predict", {
      method: "POST",
      body: await fixture("chelsea.jpg"),
    });
    const okId = ok.headers.get(REQUEST_ID_HEADER);
    assert.equal(ok.status, 200);
    assert.match(okId ?? "", UUID);
    const seen = new Set([okId]);
    for (const [what, path, init, status] of KINDS) {
      const res = await app.request(path, init);
      assert.equal(res.status, status, what);
      const id = res.headers.get(REQUEST_ID_HEADER);
      assert.match(id ?? "", UUID, what);
      assert.ok(!seen.has(id), `${what}: a new id`);
      seen.add(id);
      if (status >= 400) {
        const { error } = await res.json();
        assert.deepEqual(Object.keys(error), ["code", "message", "request_id"], what);
        assert.equal(error.request_id, id, what);
      } else {
        await res.body?.cancel();
      }
    }
  },
});

Deno.test("a 503 while the model loads carries the id in header and body", async () => {
  const app = createApp({});
  const res = await app.request("/predict", {
    method: "POST",
    body: "x",
    headers: { [REQUEST_ID_HEADER]: "trace-503" },
  });
  assert.equal(res.status, 503);
  assert.equal(res.headers.get(REQUEST_ID_HEADER), "trace-503");
  assert.deepEqual((await res.json()).error.request_id, "trace-503");
  const ready = await app.request("/readyz");
  assert.equal(ready.status, 503);
  assert.equal((await ready.json()).error.request_id, ready.headers.get(REQUEST_ID_HEADER));
});

Deno.test("a valid incoming X-Request-Id is kept, an invalid one replaced", async () => {
  const app = createApp({});
  for (const valid of ["abc", "4f2c-11_ZZ=", "a".repeat(255), crypto.randomUUID()]) {
    const res = await app.request("/nope", { headers: { "x-request-id": valid } });
    assert.equal(res.headers.get(REQUEST_ID_HEADER), valid);
    assert.equal((await res.json()).error.request_id, valid);
  }
  for (const invalid of ["", "has space", "a/b", "<script>", "é", "a".repeat(256)]) {
    const res = await app.request("/nope", { headers: { "x-request-id": invalid } });
    const id = res.headers.get(REQUEST_ID_HEADER);
    assert.match(id ?? "", UUID, JSON.stringify(invalid));
    assert.equal((await res.json()).error.request_id, id);
  }
});

Deno.test({
  name: "the request id reaches the client over a real socket",
  ...t,
  async fn() {
    const app = createApp({});
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
    try {
      const base = `http://127.0.0.1:${server.addr.port}`;
      const given = await fetch(`${base}/healthz`, { headers: { "x-request-id": "from-lb-1" } });
      assert.equal(given.headers.get(REQUEST_ID_HEADER), "from-lb-1");
      await given.body?.cancel();
      const missing = await fetch(`${base}/nope`);
      assert.equal((await missing.json()).error.request_id, missing.headers.get(REQUEST_ID_HEADER));
    } finally {
      await server.shutdown();
    }
  },
});
