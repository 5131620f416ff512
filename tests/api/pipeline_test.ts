/**
 * The one request pipeline (src/api/pipeline.ts) as every image or tensor
 * route sees it: /predict, /v2 infer (JSON, binary tensors, BYTES images) and
 * /v1/explorer/features share one queue, one pixel budget, one deadline; a
 * run still queued when its client leaves is never executed (the tests count
 * the runs that reach the model); /v2 checks every element before anything
 * is allocated; slow bodies get 408.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createApp, type ServerState } from "../../src/api/mod.ts";
import type { ModelFiles } from "../../src/api/_model_files.ts";
import type { Classifier } from "../../src/classify/mod.ts";
import { loadClassifier } from "../../src/classify/load.ts";
import { fixture, writeTinyModel } from "../_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const MODEL = "tiny-user-model";
const INFER = `/v2/models/${MODEL}/infer`;
const FEATURES = "/v1/explorer/features?layer=conv1";
/** x: [1, 3, 48, 64] of the tiny model. */
const ITEM = 3 * 48 * 64;

interface Tiny {
  classifier: Classifier;
  files: ModelFiles;
}

let tiny: Promise<Tiny> | undefined;

/** The tiny model (64x48, 4 classes) and its files, loaded once for this file. */
function tinyModel(): Promise<Tiny> {
  tiny ??= writeTinyModel(64, 48).then(async (paths) => ({
    classifier: await loadClassifier(paths),
    files: {
      model: new URL(`file://${paths.model}`),
      manifest: new URL(`file://${paths.manifest}`),
      labels: new URL(`file://${paths.dir}/labels.txt`),
    },
  }));
  return tiny;
}

/**
 * The tiny classifier behind a counter and a gate: every run that reaches the
 * model (classify, inferRaw) and every image prepared is counted, then waits
 * for the gate to open.
 */
function gated(real: Classifier) {
  let open!: () => void;
  let gate = new Promise<void>((r) => (open = r));
  const counts = { runs: 0, tensorRuns: 0, prepares: 0 };
  const classifier = {
    get info() {
      return real.info;
    },
    get classes() {
      return real.classes;
    },
    queueDepth: 0,
    async classify(...args: Parameters<Classifier["classify"]>) {
      counts.runs++;
      await gate;
      return await real.classify(...args);
    },
    async inferRaw(...args: Parameters<Classifier["inferRaw"]>) {
      counts.runs++;
      counts.tensorRuns++;
      await gate;
      return await real.inferRaw(...args);
    },
    async prepareImage(...args: Parameters<Classifier["prepareImage"]>) {
      counts.prepares++;
      await gate;
      return await real.prepareImage(...args);
    },
  } as unknown as Classifier;
  return {
    classifier,
    counts,
    open: () => open(),
    close: () => (gate = new Promise<void>((r) => (open = r))),
  };
}

type AppOptions = Parameters<typeof createApp>[1];

async function appOver(classifier: Classifier, options: AppOptions = {}) {
  const { files } = await tinyModel();
  const state: ServerState = { classifier };
  return createApp(state, { locateModel: () => Promise.resolve(files), ...options });
}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** BYTES elements in the binary extension: a 4-byte little-endian length, then the bytes. */
function bytesElements(elements: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(elements.reduce((n, e) => n + 4 + e.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const e of elements) {
    view.setUint32(at, e.length, true);
    out.set(e, at + 4);
    at += 4 + e.length;
  }
  return out;
}

const jsonRequest = (body: unknown, signal?: AbortSignal): RequestInit => ({
  method: "POST",
  body: JSON.stringify(body),
  headers: { "content-type": "application/json" },
  signal,
});

function binaryRequest(header: unknown, parts: Uint8Array[]): RequestInit {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const body = new Uint8Array(json.length + parts.reduce((n, p) => n + p.length, 0));
  body.set(json);
  let at = json.length;
  for (const p of parts) (body.set(p, at), at += p.length);
  return {
    method: "POST",
    body,
    headers: {
      "content-type": "application/octet-stream",
      "inference-header-content-length": String(json.length),
    },
  };
}

const image = (bytes: Uint8Array, signal?: AbortSignal): RequestInit => ({
  method: "POST",
  body: bytes as BodyInit,
  headers: { "content-type": "image/jpeg" },
  signal,
});

const fp32Json = (n = 1) => ({
  inputs: [{
    name: "pixels",
    datatype: "FP32",
    shape: [n, 3, 48, 64],
    data: Array(n * ITEM).fill(0),
  }],
});
const fp32Binary = () =>
  binaryRequest({
    inputs: [{
      name: "pixels",
      datatype: "FP32",
      shape: [1, 3, 48, 64],
      parameters: { binary_data_size: ITEM * 4 },
    }],
  }, [new Uint8Array(ITEM * 4)]);
const bytesJson = (images: Uint8Array[], shape = [images.length]) => ({
  inputs: [{ name: "pixels", datatype: "BYTES", shape, data: images.map(base64) }],
});
const bytesBinary = (images: Uint8Array[], shape = [images.length]) => {
  const data = bytesElements(images);
  return binaryRequest({
    inputs: [{
      name: "pixels",
      datatype: "BYTES",
      shape,
      parameters: { binary_data_size: data.length },
    }],
  }, [data]);
};

/** Every route that carries an image or a tensor, as a request for `photo`. */
function everyRoute(photo: Uint8Array): [string, string, RequestInit][] {
  return [
    ["/predict", "/predict", image(photo)],
    ["/v2 JSON FP32", INFER, jsonRequest(fp32Json())],
    ["/v2 binary FP32", INFER, fp32Binary()],
    ["/v2 JSON BYTES", INFER, jsonRequest(bytesJson([photo]))],
    ["/v2 binary BYTES", INFER, bytesBinary([photo])],
    ["/v1/explorer/features", FEATURES, image(photo)],
  ];
}

/** The error code of an answer: `error.code`, or /v2's protocol error `{ error: "..." }`. */
async function errorOf(res: Response): Promise<{ code?: string; message: string }> {
  const body = await res.json();
  if (typeof body.error === "string") return { message: body.error };
  return { code: body.error?.code, message: body.error?.message };
}

async function until(condition: () => boolean, what: string) {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(condition(), `timed out waiting for ${what}`);
}

Deno.test({
  name: "every image and tensor route answers 503 overloaded while the shared queue is full",
  ...t,
  async fn() {
    const { classifier: real } = await tinyModel();
    const photo = await fixture("camera_gray.jpg");
    const g = gated(real);
    const app = await appOver(g.classifier, { maxQueue: 1 });
    const holder = app.request("/predict", image(photo));
    await until(() => g.counts.runs === 1, "the first request to run");
    for (const [what, path, init] of everyRoute(photo)) {
      const res = await app.request(path, init);
      assert.equal(res.status, 503, what);
      assert.equal(res.headers.get("retry-after"), "1", what);
      assert.match((await errorOf(res)).message, /^Cannot classify now: 1 requests are/, what);
    }
    assert.equal(g.counts.runs, 1, "none of the refused requests ran");
    assert.equal(g.counts.prepares, 0, "none of them decoded");
    g.open();
    assert.equal((await holder).status, 200);
    for (const [what, path, init] of everyRoute(photo)) {
      const res = await app.request(path, init);
      assert.equal(res.status, 200, `${what} once there is room: ${await res.clone().text()}`);
      await res.body?.cancel();
    }
  },
});

Deno.test({
  name: "every image route answers 422 over --max-pixels, before any run",
  ...t,
  async fn() {
    const { classifier: real } = await tinyModel();
    const photo = await fixture("camera_gray.jpg");
    const g = gated(real);
    g.open();
    const app = await appOver(g.classifier, { maxPixels: 1000 });
    for (const [what, path, init] of everyRoute(photo)) {
      if (what.includes("FP32")) continue; // a tensor has no pixels to count
      const res = await app.request(path, init);
      assert.equal(res.status, 422, what);
      assert.match((await errorOf(res)).message, /megapixel|pixels/, what);
    }
    // /predict's classify decodes and runs in one call: it refused before its run.
    assert.equal(g.counts.tensorRuns, 0, "no batch over the budget reached the model");
  },
});

Deno.test({
  name: "every image and tensor route answers 503 timeout at the deadline",
  ...t,
  async fn() {
    const { classifier: real } = await tinyModel();
    const photo = await fixture("camera_gray.jpg");
    const g = gated(real); // never opened while the requests wait: each one meets its deadline
    const app = await appOver(g.classifier, { requestTimeoutMs: 100, maxQueue: 32 });
    for (const [what, path, init] of everyRoute(photo)) {
      const res = await app.request(path, init);
      assert.equal(res.status, 503, what);
      assert.equal((await errorOf(res)).code, "timeout", what);
      assert.ok(res.headers.get("retry-after"), what);
    }
    g.open();
  },
});

Deno.test({
  name: "a run still queued when its client leaves is never executed, and frees its place",
  ...t,
  async fn() {
    const { classifier: real } = await tinyModel();
    const photo = await fixture("camera_gray.jpg");
    const g = gated(real);
    const app = await appOver(g.classifier, { maxQueue: 3, runLanes: 1 });
    const first = app.request("/predict", image(photo));
    await until(() => g.counts.runs === 1, "the first run");
    // Two more, admitted and waiting for the one lane; then their clients leave.
    const left = [new AbortController(), new AbortController()];
    const queued = [
      app.request("/predict", image(photo, left[0].signal)),
      app.request(INFER, jsonRequest(fp32Json(), left[1].signal)),
    ];
    // Both hold their places (the queue of 3 is full), waiting for the lane.
    await until(() => g.counts.runs === 1, "the queued requests");
    let probe: Response;
    do {
      probe = await app.request("/predict", image(photo));
      await probe.body?.cancel();
    } while (probe.status !== 503);
    for (const c of left) c.abort();
    await Promise.all(queued);
    g.open();
    assert.equal((await first).status, 200);
    assert.equal(g.counts.runs, 1, "the runs whose clients left never reached the model");
    // Their places are free again: three more fit at once.
    const next = await Promise.all(
      Array.from({ length: 3 }, () => app.request("/predict", image(photo))),
    );
    for (const res of next) assert.equal(res.status, 200);
    assert.equal(g.counts.runs, 4);
  },
});

Deno.test({
  name: "a run still queued at its deadline is never executed",
  ...t,
  async fn() {
    const { classifier: real } = await tinyModel();
    const photo = await fixture("camera_gray.jpg");
    const g = gated(real);
    const app = await appOver(g.classifier, { maxQueue: 4, runLanes: 1, requestTimeoutMs: 150 });
    const first = app.request("/predict", image(photo));
    await until(() => g.counts.runs === 1, "the first run");
    const queued = await app.request(INFER, jsonRequest(fp32Json()));
    assert.equal(queued.status, 503);
    assert.equal((await errorOf(queued)).code, "timeout");
    await new Promise((r) => setTimeout(r, 10)); // the work is aborted just after the answer
    g.open();
    await first;
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(g.counts.runs, 1, "the timed-out run never reached the model");
  },
});

Deno.test({
  name: "/v2 refuses a batch over --max-batch with 413, counted before any element is read",
  ...t,
  async fn() {
    const { classifier: real } = await tinyModel();
    const photo = await fixture("camera_gray.jpg");
    const g = gated(real);
    g.open();
    const app = await appOver(g.classifier, { maxBatch: 2 });
    const three = [photo, photo, photo];
    const cases: [string, RequestInit][] = [
      ["JSON BYTES [3]", jsonRequest(bytesJson(three))],
      ["JSON BYTES shape [1], 3 elements", jsonRequest(bytesJson(three, [1]))],
      ["binary BYTES [3]", bytesBinary(three)],
      ["binary BYTES shape [2], 3 elements", bytesBinary(three, [2])],
      ["FP32 [3, 3, 48, 64]", jsonRequest(fp32Json(3))],
    ];
    for (const [what, init] of cases) {
      const res = await app.request(INFER, init);
      assert.equal(res.status, 413, what);
      assert.match((await errorOf(res)).message, /at most 2/, what);
    }
    assert.deepEqual(g.counts, { runs: 0, tensorRuns: 0, prepares: 0 });
    const two = await app.request(INFER, jsonRequest(bytesJson([photo, photo])));
    assert.equal(two.status, 200);
    assert.deepEqual((await two.json()).outputs[0].shape, [2, 4]);
  },
});

Deno.test({
  name: "/v2: empty and invalid elements get 400 before any decode; 300,000 empty ones 413",
  ...t,
  async fn() {
    const { classifier: real } = await tinyModel();
    const photo = await fixture("camera_gray.jpg");
    const g = gated(real);
    g.open();
    const app = await appOver(g.classifier);
    const none = new Uint8Array(0);
    const bytes = (data: unknown[], shape = [data.length]) =>
      jsonRequest({ inputs: [{ name: "pixels", datatype: "BYTES", shape, data }] });
    const bad: [string, RequestInit, RegExp][] = [
      ["an empty element after a good one", bytes([base64(photo), ""]), /element 1 is empty/],
      ["an empty binary element", bytesBinary([photo, none]), /element 1 is empty/],
      ["not base64", bytes([base64(photo), "@@@"]), /data\[1\] is not valid base64/],
      ["a number", bytes([base64(photo), 7]), /data\[1\] is not a string/],
      ["count below the shape", bytes([base64(photo)], [2]), /2 elements, it carries 1/],
      ["a truncated length prefix", {
        ...bytesBinary([photo]),
        body: (bytesBinary([photo]).body as Uint8Array<ArrayBuffer>).subarray(0, -photo.length - 2),
      }, /./],
    ];
    for (const [what, init, pattern] of bad) {
      const res = await app.request(INFER, init);
      assert.equal(res.status, 400, what);
      assert.match((await errorOf(res)).message, pattern, what);
    }
    assert.deepEqual(
      g.counts,
      { runs: 0, tensorRuns: 0, prepares: 0 },
      "nothing decoded, nothing run",
    );
    // 300,000 empty elements (1.2 MB of JSON, as the hostile report sent), the shape honest or not.
    const many = Array<string>(300_000).fill("");
    for (const shape of [[300_000], [1]]) {
      const res = await app.request(INFER, bytes(many, shape));
      assert.equal(res.status, 413, `shape ${shape}`);
    }
    const binary = await app.request(INFER, bytesBinary(Array(300_000).fill(none), [1]));
    assert.equal(binary.status, 413);
    await binary.body?.cancel();
    assert.deepEqual(g.counts, { runs: 0, tensorRuns: 0, prepares: 0 });
  },
});

/** A body that sends `head`, then nothing more (or a byte every `everyMs`). */
function slowBody(head: Uint8Array, everyMs?: number): ReadableStream<Uint8Array> {
  let sent = false;
  let timer: ReturnType<typeof setInterval> | undefined;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (everyMs) timer = setInterval(() => controller.enqueue(new Uint8Array(1)), everyMs);
    },
    pull(controller) {
      if (!sent) (sent = true, controller.enqueue(head));
      return new Promise(() => {}); // and then stall
    },
    cancel() {
      clearInterval(timer);
    },
  });
}

Deno.test({
  name: "a body that stalls, or trickles past the read deadline, gets 408 and frees its reader",
  ...t,
  async fn() {
    const { classifier: real } = await tinyModel();
    const g = gated(real);
    g.open();
    const app = await appOver(g.classifier, {
      bodyIdleTimeoutMs: 250,
      bodyReadTimeoutMs: 600,
      maxReaders: 1,
    });
    const stalled = await app.request("/predict", image(slowBody(new Uint8Array(3)) as never));
    assert.equal(stalled.status, 408);
    const stalledError = await errorOf(stalled);
    assert.equal(stalledError.code, "request_timeout");
    assert.match(stalledError.message, /^Cannot read the request: no data for 250 ms/);
    const trickle = await app.request(INFER, {
      method: "POST",
      body: slowBody(new Uint8Array(1), 30),
    });
    assert.equal(trickle.status, 408);
    assert.match((await errorOf(trickle)).message, /the body took over 600 ms/);
    assert.equal(g.counts.runs, 0);
    // The one reader place is free again.
    const photo = await fixture("camera_gray.jpg");
    assert.equal((await app.request("/predict", image(photo))).status, 200);
  },
});

Deno.test({
  name: "a /v2 JSON batch over --max-batch is refused while it streams in, before the body ends",
  ...t,
  async fn() {
    const { classifier: real } = await tinyModel();
    const g = gated(real);
    g.open();
    // The idle timeout would answer 408 if the refusal waited for the (never ending) body.
    const app = await appOver(g.classifier, { maxBatch: 4, bodyIdleTimeoutMs: 60_000 });
    const head = JSON.stringify({
      inputs: [{ name: "x", datatype: "BYTES", shape: [5], data: ["a", "b", "c", "d", "e"] }],
    });
    const res = await app.request(INFER, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: slowBody(new TextEncoder().encode(head.slice(0, -3))) as never,
    });
    assert.equal(res.status, 413);
    assert.match((await errorOf(res)).message, /more than 4 strings/);
    assert.deepEqual(g.counts, { runs: 0, tensorRuns: 0, prepares: 0 });
  },
});
