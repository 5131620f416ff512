import assert from "node:assert/strict";
import { createApp, createLogger, ServerMetrics, type ServerState } from "../../src/api/mod.ts";
import type { Classification, Classifier } from "../../src/classify/mod.ts";
import { QueueFullError } from "../../src/host/bounded_queue.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const LIMIT = 64 * 1024;
const IMAGE = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);

type Classify = (bytes: Uint8Array, k: number, options: { signal?: AbortSignal }) => Promise<
  Classification
>;

/** A classifier whose classify() is whatever the test says; the rest is just enough for the app. */
function stubClassifier(classify: Classify): Classifier {
  return {
    classes: 4,
    queueDepth: 0,
    classify,
    info: { name: "stub", backend: { name: "stub", threads: 1 }, precision: "fp32" },
  } as unknown as Classifier;
}

const answer = (): Classification => ({
  model: "stub",
  backend: "stub",
  weights: { kind: "user", source: "test" } as Classification["weights"],
  predictions: [{ index: 0, label: "red", score: 1 }],
  timings_ms: { decode: 0, preprocess: 0, inference: 0, total: 0 },
});

const post = (body: BodyInit, headers: Record<string, string> = {}) => ({
  method: "POST",
  body,
  headers: { "content-type": "image/jpeg", ...headers },
});

async function errorOf(res: Response) {
  const body = await res.json();
  return { status: res.status, code: body.error?.code, message: body.error?.message as string };
}

/** A stream of `chunks` chunks of `size` bytes that counts how many were pulled. */
function countingStream(chunks: number, size: number) {
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled === chunks) return controller.close();
      pulled++;
      controller.enqueue(new Uint8Array(size));
    },
  });
  return { stream, pulled: () => pulled };
}

Deno.test("a streamed body over the limit gets 413 and is not read past the limit", async () => {
  const app = createApp({ classifier: stubClassifier(() => Promise.resolve(answer())) }, {
    maxBodyBytes: LIMIT,
  });
  const { stream, pulled } = countingStream(1000, 16 * 1024); // 16 MB offered
  const res = await app.request("/predict", post(stream));
  assert.deepEqual((await errorOf(res)).code, "payload_too_large");
  assert.equal(res.status, 413);
  // The limit's 4 chunks, the one that crosses it, and the read-ahead of the streams between.
  assert.ok(pulled() <= LIMIT / (16 * 1024) + 4, `read ${pulled()} chunks of 16 KB`);
});

Deno.test("a Content-Length that lies low does not let a large body through", async () => {
  // Hono's bodyLimit trusts Content-Length when present; ours counts the bytes regardless.
  const app = createApp({ classifier: stubClassifier(() => Promise.resolve(answer())) }, {
    maxBodyBytes: LIMIT,
  });
  const res = await app.request(
    "/predict",
    post(new Uint8Array(LIMIT * 4), { "content-length": "10" }),
  );
  assert.equal(res.status, 413);
});

Deno.test("a Content-Length over the limit is refused before the body is read", async () => {
  const app = createApp({ classifier: stubClassifier(() => Promise.resolve(answer())) }, {
    maxBodyBytes: LIMIT,
  });
  const { stream, pulled } = countingStream(10, 1024);
  const res = await app.request(
    "/predict",
    post(stream, { "content-length": String(10 * 1024 ** 3) }),
  );
  assert.equal(res.status, 413);
  assert.ok(pulled() <= 1, "only the chunk a new stream pulls by itself");
});

Deno.test("a body within the limit reaches the classifier byte for byte", async () => {
  let seen: Uint8Array | undefined;
  const app = createApp({
    classifier: stubClassifier((bytes) => {
      seen = bytes;
      return Promise.resolve(answer());
    }),
  }, { maxBodyBytes: LIMIT });
  const { stream } = countingStream(3, 1000);
  const res = await app.request("/predict", post(stream));
  assert.equal(res.status, 200);
  assert.equal(seen?.length, 3000);
});

Deno.test({
  name: "a full queue answers 503 overloaded with Retry-After and counts the rejections",
  ...t,
  async fn() {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const metrics = new ServerMetrics();
    const state: ServerState = {
      classifier: stubClassifier(async () => {
        await gate;
        return answer();
      }),
    };
    const app = createApp(state, { maxQueue: 2, metrics });
    const pending = Array.from({ length: 5 }, () => app.request("/predict", post(IMAGE)));
    // The first two hold the queue; the other three are refused at once.
    const refused = await Promise.all(pending.slice(2));
    for (const res of refused) {
      assert.equal(res.status, 503);
      assert.equal(res.headers.get("retry-after"), "1");
      const { code, message } = await errorOf(res);
      assert.equal(code, "overloaded");
      assert.match(message, /^Cannot classify now: 2 requests are already queued/);
    }
    release();
    for (const res of await Promise.all(pending.slice(0, 2))) assert.equal(res.status, 200);
    assert.equal((await app.request("/predict", post(IMAGE))).status, 200, "room again");
    const scrape = metrics.render(state);
    assert.match(scrape, /^alexnet_edge_queue_rejections_total 3$/m);
  },
});

Deno.test({
  name: "a request over its deadline gets 503 timeout and its work is told to stop",
  ...t,
  async fn() {
    let signal: AbortSignal | undefined;
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    const app = createApp({
      classifier: stubClassifier(async (_bytes, _k, options) => {
        signal = options.signal;
        await done;
        signal?.throwIfAborted();
        return answer();
      }),
    }, { requestTimeoutMs: 150, maxQueue: 1 });
    const start = performance.now();
    const res = await app.request("/predict", post(IMAGE));
    const ms = performance.now() - start;
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("retry-after"), "1");
    const { code, message } = await errorOf(res);
    assert.equal(code, "timeout");
    assert.match(message, /^Cannot answer in time/);
    assert.ok(ms >= 140 && ms < 2000, `answered after ${ms.toFixed(0)} ms`);
    await new Promise((r) => setTimeout(r, 0)); // the abort follows the answer
    assert.equal(signal?.aborted, true, "the classifier's signal aborted");
    // The timed-out work still holds its place in the queue until it ends.
    assert.equal((await errorOf(await app.request("/predict", post(IMAGE)))).code, "overloaded");
    // Once it ends (it sees the aborted signal and stops), the place is free again.
    finish();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal((await app.request("/predict", post(IMAGE))).status, 200);
  },
});

Deno.test("a backend's own full queue is answered 503 overloaded too, and counted", async () => {
  const metrics = new ServerMetrics();
  const state: ServerState = {
    classifier: stubClassifier(() => Promise.reject(new QueueFullError(4))),
  };
  const app = createApp(state, { metrics });
  const res = await app.request("/predict", post(IMAGE));
  assert.equal(res.status, 503);
  assert.equal((await errorOf(res)).code, "overloaded");
  assert.match(metrics.render(state), /^alexnet_edge_queue_rejections_total 1$/m);
});

Deno.test("an inference failure is a bare 500 that shows no path, stack or message", async () => {
  const app = createApp({
    classifier: stubClassifier(() => {
      throw new Error("ENOENT /work/main/models/secret.onnx at run (file:///work/x.ts:12:3)");
    }),
  }, { logger: createLogger({ level: "error", write: () => {} }) });
  const res = await app.request("/predict", post(IMAGE));
  assert.equal(res.status, 500);
  const text = await res.text();
  assert.doesNotMatch(text, /work|secret|\.ts|ENOENT|at run/);
  assert.match(text, /"code":"internal"/);
  // And the app still answers.
  assert.equal((await app.request("/healthz")).status, 200);
});

/** Sends raw bytes on a new loopback connection, optionally stalls, returns the status line. */
async function rawExchange(port: number, parts: Uint8Array[]): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    for (const part of parts) await conn.write(part).catch(() => {});
    const buffer = new Uint8Array(4096);
    const n = await conn.read(buffer);
    return new TextDecoder().decode(buffer.subarray(0, n ?? 0)).split("\r\n")[0];
  } finally {
    conn.close();
  }
}

Deno.test({
  name: "over HTTP: a chunked upload past the limit gets 413, a stalled one 503 and its place back",
  ...t,
  async fn() {
    const app = createApp({ classifier: stubClassifier(() => Promise.resolve(answer())) }, {
      maxBodyBytes: LIMIT,
      requestTimeoutMs: 300,
      maxQueue: 1,
    });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
    const enc = (s: string) => new TextEncoder().encode(s);
    try {
      // No Content-Length at all: chunked, 16 KB at a time, well past the limit.
      const chunk = enc(`4000\r\n${"x".repeat(0x4000)}\r\n`);
      const chunked = await rawExchange(server.addr.port, [
        enc("POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ...Array.from({ length: 12 }, () => chunk),
      ]);
      assert.equal(chunked, "HTTP/1.1 413 Payload Too Large");
      // A slow client: promises 1000 bytes, sends 10, then nothing.
      const start = performance.now();
      const stalled = await rawExchange(server.addr.port, [
        enc("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789"),
      ]);
      assert.equal(stalled, "HTTP/1.1 503 Service Unavailable");
      assert.ok(performance.now() - start < 3000);
      // Its read was cancelled at the deadline, so the one place in the queue is free again.
      await new Promise((r) => setTimeout(r, 50));
      const res = await fetch(`http://127.0.0.1:${server.addr.port}/predict`, post(IMAGE));
      assert.equal(res.status, 200);
      await res.body?.cancel();
    } finally {
      await server.shutdown();
    }
  },
});
