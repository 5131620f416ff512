import assert from "node:assert/strict";
import { createApp } from "../../src/api/mod.ts";
import { Classifier } from "../../src/classify/classifier.ts";
import { loadClassifier } from "../../src/classify/load.ts";
import { parseConfig } from "../../src/config.ts";
import { ClassifierError } from "../../src/errors.ts";
import { loadModel } from "../../src/model/store.ts";
import { QueueFullError } from "../../src/host/bounded_queue.ts";
import { createWasmBackend } from "../../src/runtime/mod.ts";
import {
  CALLS_PER_WORKER,
  createWorkerBackend,
  EarlyWorker,
  type WorkerBackendOptions,
} from "../../src/classify/worker_backend.ts";
import { png } from "../hardening/corpus_images.ts";
import { buildTinyModel, fixture, writeTinyModel } from "../_helpers.ts";
import { createLogger } from "../../src/log.ts";
import { buildQOperatorAlexNet } from "../model/_qoperator_models.ts";

/** A pool of `workers` single-threaded sessions. */
const createWorkerPoolBackend = (model: Uint8Array, options: WorkerBackendOptions) =>
  createWorkerBackend(model, { threadsPerWorker: 1, ...options });

/** The 8x8 tiny model in a pool of one Worker, and its preprocessing. */
async function tinyOneWorkerPool() {
  const paths = await writeTinyModel(8, 8);
  const { bytes, manifest } = await loadModel(new URL(`file://${paths.manifest}`));
  const pool = await createWorkerPoolBackend(bytes, { ...io, workers: 1 });
  return { pool, spec: manifest.preprocessing };
}

/** One session of `threads` threads in one Worker. */
const createInferenceWorkerBackend = (model: Uint8Array, options: WorkerBackendOptions) =>
  createWorkerBackend(model, { ...options, workers: 1, threadsPerWorker: options.threads });

const t = { sanitizeOps: false, sanitizeResources: false };
const io = { inputName: "pixels", outputName: "logits" };
const DIMS = [1, 3, 8, 8];

/** x: [1, 3, 8, 8], a different ramp for each i. */
const input = (i: number) =>
  Float32Array.from({ length: 3 * 64 }, (_, j) => ((j * (i + 3)) % 17) - 8);

function assertClose(a: Float32Array, b: Float32Array, what: string) {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    assert.ok(
      Math.abs(a[i] - b[i]) <= 1e-6 * (1 + Math.abs(b[i])),
      `${what}[${i}]: ${a[i]} vs ${b[i]}`,
    );
  }
}

Deno.test({
  name: "a pool of 2 workers answers each of 8 concurrent runs as one wasm session does",
  ...t,
  async fn() {
    const bytes = buildTinyModel(8, 8);
    const pool = await createWorkerPoolBackend(bytes, { ...io, workers: 2 });
    const single = await createWasmBackend(bytes, io);
    assert.equal(pool.workers, 2);
    assert.equal(pool.threads, 1);
    assert.deepEqual(pool.inputShape, [null, 3, 8, 8]);
    const inputs = Array.from({ length: 8 }, (_, i) => input(i));
    const runs = inputs.map((x) => pool.run(x, DIMS));
    assert.equal(pool.queueDepth, 8); // 2 running, 6 waiting
    const got = await Promise.all(runs);
    assert.equal(pool.queueDepth, 0);
    for (const [i, x] of inputs.entries()) {
      const want = await single.run(x, DIMS);
      assert.deepEqual(got[i].dims, [1, 4]);
      assertClose(got[i].data, want.data, `run ${i}`);
    }
    // A batch goes to one worker whole.
    const batch = new Float32Array(3 * 3 * 64);
    inputs.slice(0, 3).forEach((x, i) => batch.set(x, i * x.length));
    const out = await pool.run(batch, [3, 3, 8, 8]);
    assert.deepEqual(out.dims, [3, 4]);
    for (let i = 0; i < 3; i++) {
      assertClose(out.data.subarray(i * 4, i * 4 + 4), got[i].data, `row ${i}`);
    }
    await Promise.all([pool.release(), single.release()]);
  },
});

Deno.test({
  name:
    "a full pool refuses one more run at once with QueueFullError and counts it out of the depth",
  ...t,
  async fn() {
    const pool = await createWorkerPoolBackend(buildTinyModel(8, 8), {
      ...io,
      workers: 1,
      maxQueue: 2,
    });
    const a = pool.run(input(0), DIMS);
    const b = pool.run(input(1), DIMS);
    await assert.rejects(pool.run(input(2), DIMS), QueueFullError);
    assert.equal(pool.queueDepth, 2);
    await Promise.all([a, b]);
    // Room again once they are done.
    assert.deepEqual((await pool.run(input(2), DIMS)).dims, [1, 4]);
    await pool.release();
    await assert.rejects(pool.run(input(0), DIMS), /are closed/);
  },
});

Deno.test({
  name: "a pool on a model without the named input fails to start with the session's reason",
  ...t,
  async fn() {
    await assert.rejects(
      createWorkerPoolBackend(buildTinyModel(8, 8), { ...io, inputName: "data_0", workers: 2 }),
      (e) => e instanceof ClassifierError && /needs input "data_0"/.test(e.message),
    );
    await assert.rejects(
      createWorkerPoolBackend(buildTinyModel(8, 8), { ...io, workers: 0 }),
      RangeError,
    );
  },
});

Deno.test({
  name: "--workers 2 reaches the pool through loadClassifier and the server answers the same",
  ...t,
  async fn() {
    const paths = await writeTinyModel(64, 48);
    const pooled = await loadClassifier({ ...paths, backend: "wasm", workers: 2 });
    const one = await loadClassifier({ ...paths, backend: "wasm" });
    const app = createApp({ classifier: pooled });
    const photo = await fixture("chelsea.jpg");
    const res = await app.request("/predict?top_k=4", { method: "POST", body: photo });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.backend, "wasm");
    const want = await one.classify(photo, 4);
    assert.deepEqual(
      body.predictions.map((p: { index: number }) => p.index),
      want.predictions.map((p) => p.index),
    );
    await Promise.all([pooled.release(), one.release()]);
  },
});

Deno.test({
  name: "the pool decodes and preprocesses in its workers and answers as one session: " +
    "same top-k and probabilities, every stage timed",
  ...t,
  async fn() {
    const paths = await writeTinyModel(64, 48);
    const model = await loadModel(new URL(`file://${paths.manifest}`));
    const pool = await createWorkerPoolBackend(model.bytes, { ...io, workers: 2 });
    // The image path only: a tensor run from this thread would fail the test.
    const pooled = new Classifier(model, {
      ...pool,
      get state() {
        return pool.state;
      },
      run: () => Promise.reject(new Error("the pool path ran a tensor from the server thread")),
    });
    const one = await loadClassifier({ ...paths, backend: "wasm" });
    const names = ["chelsea.jpg", "chelsea_exif6.jpg", "coffee.png", "chelsea_animated.gif"];
    const photos = await Promise.all(names.map(fixture));
    // Concurrently, as a server would: 2 running, 2 waiting.
    const got = await Promise.all(photos.map((photo) => pooled.classify(photo, 4)));
    for (const [i, photo] of photos.entries()) {
      const want = await one.classify(photo, 4);
      assert.deepEqual(
        got[i].predictions.map((p) => [p.index, p.label]),
        want.predictions.map((p) => [p.index, p.label]),
        names[i],
      );
      assertClose(
        Float32Array.from(got[i].predictions, (p) => p.score),
        Float32Array.from(want.predictions, (p) => p.score),
        names[i],
      );
      const { decode, preprocess, inference, total } = got[i].timings_ms;
      for (const ms of [decode, preprocess, inference, total]) assert.ok(ms >= 0, names[i]);
      assert.ok(Math.abs(decode + preprocess + inference - total) <= 0.02, names[i]);
    }
    await Promise.all([pool.release(), one.release()]);
  },
});

Deno.test({
  name: "a corrupt or oversized image through the pool gives the one-session path's 422 error",
  ...t,
  async fn() {
    const paths = await writeTinyModel(64, 48);
    const pooled = await loadClassifier({ ...paths, backend: "wasm", workers: 2 });
    const one = await loadClassifier({ ...paths, backend: "wasm" });
    const photo = await fixture("chelsea.jpg");
    const corrupt = [
      photo.slice(0, 300), // a JPEG cut short
      Uint8Array.from(photo, (b, i) => (i > 20 && i < 2000 ? 0xff - b : b)), // scrambled tables
      Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13), // bare PNG header
    ];
    for (const [i, body] of corrupt.entries()) {
      const answers = await Promise.all([pooled, one].map(async (classifier) => {
        const res = await createApp({ classifier }).request("/predict", { method: "POST", body });
        const json = await res.json();
        assert.equal(typeof json.error.request_id, "string");
        delete json.error.request_id; // one per request
        return { status: res.status, body: json };
      }));
      assert.equal(answers[1].status, 422, `corrupt ${i}: ${JSON.stringify(answers[1].body)}`);
      assert.equal(answers[1].body.error.code, "decode_failed");
      assert.deepEqual(answers[0], answers[1], `corrupt ${i}`);
    }
    // Over the pixel limit: the same ClassifierError, code and message.
    const errors = await Promise.all(
      [pooled, one].map((c) => c.classify(photo, 4, { maxPixels: 1000 }).catch((e) => e)),
    );
    for (const e of errors) assert.ok(e instanceof ClassifierError, String(e));
    const [fromPool, fromOne] = errors.map((e) => [e.code, e.message, e.status]);
    assert.deepEqual(fromPool, fromOne);
    assert.deepEqual(fromPool.slice(0, 1).concat(fromPool[2]), ["decode_failed", 422]);
    await Promise.all([pooled.release(), one.release()]);
  },
});

Deno.test("--workers and WORKERS set the pool size; a bad one is refused with the setting named", () => {
  assert.equal(parseConfig([]).workers, undefined);
  assert.equal(parseConfig(["--workers", "2"]).workers, 2);
  assert.equal(parseConfig([], (k) => (k === "WORKERS" ? "3" : undefined)).workers, 3);
  assert.equal(
    parseConfig(["--workers", "0"], (k) => (k === "WORKERS" ? "3" : undefined)).workers,
    0,
  );
  assert.throws(() => parseConfig(["--workers=-1"]), /workers=-1/);
  assert.throws(() => parseConfig(["--workers", "two"]), /workers=two/);
});

Deno.test({
  name: "the inference Worker runs one session with the asked threads, answers as a session " +
    "on this thread does, and takes the caller's model copy",
  ...t,
  async fn() {
    // A plain ArrayBuffer, as Deno.readFile gives (encodeModel's may share a Buffer pool).
    const bytes = new Uint8Array(buildTinyModel(8, 8));
    const single = await createWasmBackend(buildTinyModel(8, 8), io);
    const backend = await createInferenceWorkerBackend(bytes, {
      ...io,
      threads: 2,
      releaseModel: true,
    });
    assert.equal(backend.workers, 1);
    assert.equal(backend.threads, 2);
    assert.equal((bytes.buffer as ArrayBuffer).detached, true, "moved to the Worker, not cloned");
    const inputs = Array.from({ length: 4 }, (_, i) => input(i));
    const runs = inputs.map((x) => backend.run(x, DIMS));
    assert.equal(backend.queueDepth, 4); // one running, three waiting in order
    for (const [i, out] of (await Promise.all(runs)).entries()) {
      assertClose(out.data, (await single.run(inputs[i], DIMS)).data, `run ${i}`);
    }
    await Promise.all([backend.release(), single.release()]);
  },
});

Deno.test({
  name: "without releaseModel the inference Worker gets a copy and the caller keeps its bytes",
  ...t,
  async fn() {
    const bytes = new Uint8Array(buildTinyModel(8, 8));
    const backend = await createInferenceWorkerBackend(bytes, { ...io, threads: 1 });
    assert.equal((bytes.buffer as ArrayBuffer).detached, false);
    assert.equal(bytes.length > 0, true);
    assert.deepEqual((await backend.run(input(0), DIMS)).dims, [1, 4]);
    await backend.release();
  },
});

Deno.test({
  name: "a pool with releaseModel frees the caller's copy once its workers have started",
  ...t,
  async fn() {
    const bytes = new Uint8Array(buildTinyModel(8, 8));
    const pool = await createWorkerPoolBackend(bytes, { ...io, workers: 2, releaseModel: true });
    assert.equal((bytes.buffer as ArrayBuffer).detached, true);
    assert.equal(pool.threads, 1);
    assert.deepEqual((await pool.run(input(0), DIMS)).dims, [1, 4]);
    await pool.release();
  },
});

Deno.test({
  name: "loadClassifier runs the one session in a Worker with inferenceWorker, else on this thread",
  ...t,
  async fn() {
    const paths = await writeTinyModel(8, 8);
    const lines: string[] = [];
    const inWorker = await loadClassifier({
      ...paths,
      backend: "wasm",
      threads: 2,
      inferenceWorker: true,
      log: (line) => lines.push(line),
    });
    assert.equal(inWorker.info.backend.threads, 2);
    assert.match(lines.join("\n"), /one dedicated Worker \(2 threads\)/);
    assert.equal(inWorker.restartWorker("was restarted by the test"), true);
    const here = await loadClassifier({ ...paths, backend: "wasm", threads: 1 });
    assert.equal(here.restartWorker(), false, "no Worker to restart on this thread");
    assert.deepEqual(here.state, { status: "ready" });
    // --workers wins: a pool of single-threaded sessions.
    const pool = await loadClassifier({
      ...paths,
      backend: "wasm",
      workers: 2,
      threads: 2,
      inferenceWorker: true,
    });
    assert.equal(pool.info.backend.threads, 1);
    await Promise.all([inWorker.release(), here.release(), pool.release()]);
  },
});

Deno.test({
  name: "an invalid model in the inference Worker fails with the session's reason, no fallback",
  ...t,
  async fn() {
    const paths = await writeTinyModel(8, 8);
    const manifest = JSON.parse(await Deno.readTextFile(paths.manifest));
    manifest.input.name = "data_0";
    await Deno.writeTextFile(paths.manifest, JSON.stringify(manifest));
    await assert.rejects(
      loadClassifier({ ...paths, backend: "wasm", inferenceWorker: true }),
      (e) => e instanceof ClassifierError && /needs input "data_0"/.test(e.message),
    );
  },
});

Deno.test("--inference-thread and INFERENCE_THREAD choose worker or main; others are refused", () => {
  assert.equal(parseConfig([]).inferenceThread, undefined);
  assert.equal(parseConfig(["--inference-thread", "main"]).inferenceThread, "main");
  assert.equal(
    parseConfig([], (k) => (k === "INFERENCE_THREAD" ? "worker" : undefined)).inferenceThread,
    "worker",
  );
  assert.throws(() => parseConfig(["--inference-thread", "gpu"]), /inference-thread=gpu/);
});

Deno.test({
  name:
    "a classifyImage call still waiting when its signal aborts is dropped; the running one ends",
  ...t,
  async fn() {
    const { pool, spec } = await tinyOneWorkerPool();
    const image = await fixture("chelsea.jpg");
    const first = new AbortController();
    const second = new AbortController();
    // The Worker takes CALLS_PER_WORKER calls at once; the next one waits.
    const running = Array.from(
      { length: CALLS_PER_WORKER },
      () => pool.classifyImage(image, { spec, signal: first.signal }),
    );
    const waiting = pool.classifyImage(image, { spec, signal: second.signal });
    assert.equal(pool.queueDepth, CALLS_PER_WORKER + 1);
    second.abort(new RangeError("timed out"));
    await assert.rejects(waiting, (e) => e instanceof RangeError && e.message === "timed out");
    assert.equal(pool.queueDepth, CALLS_PER_WORKER);
    for (const run of running) assert.deepEqual((await run).dims, [1, 4]);
    assert.equal(pool.queueDepth, 0);
    await assert.rejects(
      pool.classifyImage(image, { spec, signal: second.signal }),
      (e) => e instanceof RangeError && e.message === "timed out",
    );
    await pool.release();
  },
});

Deno.test({
  name: "in the inference Worker, prepareImage, infer and classify give this thread's answers " +
    "bit for bit",
  ...t,
  async fn() {
    const paths = await writeTinyModel(64, 48);
    const remote = await loadClassifier({ ...paths, backend: "wasm", inferenceWorker: true });
    const local = await loadClassifier({ ...paths, backend: "wasm" });
    assert.equal(remote.restartWorker("was restarted by the test"), true, "runs in a Worker");
    for (const name of ["chelsea.jpg", "coffee.png", "chelsea_exif6.jpg"]) {
      const photo = await fixture(name);
      const [x, y] = await Promise.all([remote.prepareImage(photo), local.prepareImage(photo)]);
      assert.deepEqual(x, y, name);
      const [a, b] = await Promise.all([remote.infer(x, 1), local.infer(y, 1)]);
      assert.deepEqual(a, b, name);
      const [p, q] = await Promise.all([remote.classify(photo, 4), local.classify(photo, 4)]);
      assert.deepEqual(p.predictions, q.predictions, name);
    }
    // Over the pixel limit, from the Worker: the same error, code and message.
    const photo = await fixture("chelsea.jpg");
    const errors = await Promise.all(
      [remote, local].map((c) => c.prepareImage(photo, { maxPixels: 1000 }).catch((e) => e)),
    );
    assert.ok(errors[0] instanceof ClassifierError);
    assert.deepEqual([errors[0].code, errors[0].message], [errors[1].code, errors[1].message]);
    await Promise.all([remote.release(), local.release()]);
  },
});

Deno.test({
  name: "a small image sent while a large PNG decodes in the same Worker is answered first",
  ...t,
  async fn() {
    const { pool, spec } = await tinyOneWorkerPool();
    // 36 MP of Paeth rows: hundreds of ms to inflate, decoded in slices that yield.
    const large = png({ width: 6000, height: 6000, bitDepth: 8, colorType: 6, filter: 4 });
    const order: string[] = [];
    const big = pool.classifyImage(large, { spec }).then(() => order.push("large"));
    await new Promise((r) => setTimeout(r, 20)); // the large one is decoding
    const small = pool.classifyImage(await fixture("chelsea.jpg"), { spec })
      .then(() => order.push("small"));
    await Promise.all([big, small]);
    assert.deepEqual(order, ["small", "large"]);
    await pool.release();
  },
});

Deno.test({
  name: "a Worker started before its model is read serves as the first Worker, taken once",
  ...t,
  async fn() {
    const bytes = buildTinyModel(8, 8);
    const early = new EarlyWorker();
    const backend = await createInferenceWorkerBackend(bytes.slice(), { ...io, threads: 1, early });
    // Taken: nothing is left for a second backend, nor for close to end.
    assert.equal(early.take(), undefined);
    early.close();
    const single = await createWasmBackend(bytes, io);
    assertClose(
      (await backend.run(input(1), DIMS)).data,
      (await single.run(input(1), DIMS)).data,
      "run",
    );
    await Promise.all([backend.release(), single.release()]);
    // One nothing took up is ended by close, and gives no Worker afterwards.
    const unused = new EarlyWorker();
    unused.close();
    assert.equal(unused.take(), undefined);
  },
});

Deno.test({
  name:
    "an inference Worker given helper threads by this thread splits over them from its first run, with the 1-thread bits",
  ...t,
  async fn() {
    const small = { inputSize: 67, convDivisor: 8, fcWidth: 64, classes: 10, calibration: 2 };
    const m = await buildQOperatorAlexNet(small);
    const alex = { inputName: "data_0", outputName: "softmaxout_1", int8: "custom" as const };
    const x = Float32Array.from({ length: 3 * 67 * 67 }, (_, i) => ((i * 7) % 13) / 13 - 0.5);
    const dims = [1, 3, 67, 67];
    const one = await createWasmBackend(m.bytes.slice(), { ...alex, threads: 1 });
    const expected = (await one.run(x, dims)).data;
    await one.release();
    const run = async (early: EarlyWorker | undefined, settled: RegExp) => {
      const lines: string[] = [];
      const logger = createLogger({ write: (line) => lines.push(line) });
      const backend = await createInferenceWorkerBackend(m.bytes.slice(), {
        ...alex,
        threads: 2,
        early,
        logger,
      });
      const out = (await backend.run(x, dims)).data;
      // Waits for the line saying where the threads stand (at most a minute: then the asserts say).
      const deadline = Date.now() + 60_000;
      while (!lines.some((l) => settled.test(l)) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await backend.release();
      return { out, lines: lines.join("\n") };
    };
    // Given: on 2 threads from the start, no helpers started in the Worker, no swap.
    const given = await run(new EarlyWorker(2), /run on 2 threads from the start/);
    assert.ok(given.out.every((v, i) => Object.is(v, expected[i])), "2 threads differ from 1");
    assert.match(given.lines, /run on 2 threads from the start/);
    assert.doesNotMatch(given.lines, /now run on 2 threads/);
    // Without: the Worker answers on one thread and starts its own helpers afterwards.
    const own = await run(undefined, /now run on 2 threads/);
    assert.ok(own.out.every((v, i) => Object.is(v, expected[i])), "1 thread, in the Worker");
    assert.match(own.lines, /now run on 2 threads/);
    assert.doesNotMatch(own.lines, /from the start/);
  },
});
