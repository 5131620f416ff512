import assert from "node:assert/strict";
import { createApp, createLogger, REQUEST_ID_HEADER, type ServerState } from "../../src/api/mod.ts";
import { loadClassifier } from "../../src/classify/load.ts";
import type { Classifier } from "../../src/classify/mod.ts";
import { fixture, writeTinyModel } from "../_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const ROOT = new URL("../../", import.meta.url);
const REQUEST_FIELDS = [
  "time",
  "level",
  "msg",
  "method",
  "path",
  "status",
  "duration_ms",
  "bytes_in",
  "model",
  "backend",
  "request_id",
];

/** A logger writing into an array, and the lines parsed (each must be one JSON object). */
function memoryLogger(level: "debug" | "info" | "warn" | "error" = "info") {
  const lines: string[] = [];
  const logger = createLogger({ level, write: (line) => lines.push(line) });
  const parsed = () =>
    lines.map((line) => {
      assert.doesNotMatch(line, /\n/, "one line each");
      const value = JSON.parse(line);
      assert.equal(typeof value, "object");
      return value as Record<string, unknown>;
    });
  return { logger, lines, parsed };
}

let tiny: Promise<Classifier> | undefined;
function tinyClassifier(): Promise<Classifier> {
  tiny ??= writeTinyModel(64, 48).then((paths) => loadClassifier(paths));
  return tiny;
}

Deno.test("the logger writes time, level and msg first, filters by level and serializes errors", () => {
  const { logger, parsed } = memoryLogger("info");
  logger.debug("hidden");
  logger.info("shown", { a: 1, msg: "cannot override", level: "nope" });
  logger.warn("warned");
  logger.error("failed", { error: new RangeError("bad range"), big: 10n });
  const lines = parsed();
  assert.deepEqual(lines.map((l) => l.level), ["info", "warn", "error"]);
  assert.deepEqual(Object.keys(lines[0]), ["time", "level", "msg", "a"]);
  assert.equal(lines[0].msg, "shown");
  assert.ok(!Number.isNaN(Date.parse(lines[0].time as string)));
  const error = lines[2].error as Record<string, string>;
  assert.equal(error.name, "RangeError");
  assert.equal(error.message, "bad range");
  assert.match(error.stack, /RangeError/);
  assert.equal(lines[2].big, "10");
  assert.equal(logger.enabled("debug"), false);
  assert.equal(logger.enabled("error"), true);
  assert.throws(() => createLogger({ level: "loud" as "info" }), RangeError);
});

Deno.test({
  name:
    "one JSON log line per request with method, path, status, duration, bytes in, model, backend, id",
  ...t,
  async fn() {
    const { logger, parsed } = memoryLogger("info");
    const state: ServerState = {};
    const app = createApp(state, { logger, maxBodyBytes: 64 * 1024 });
    const jpeg = await fixture("chelsea.jpg");
    const answers: Response[] = [];
    const send = async (path: string, init?: RequestInit) => {
      const res = await app.request(path, init);
      await res.body?.cancel();
      answers.push(res);
    };
    await send("/predict", { method: "POST", body: jpeg }); // 503
    state.classifier = await tinyClassifier();
    await send("/predict?top_k=2", {
      method: "POST",
      body: jpeg,
      headers: { "x-request-id": "q-1" },
    });
    await send("/predict", { method: "POST", body: new Uint8Array(0) }); // 400
    await send("/nope"); // 404
    await send("/healthz");

    const lines = parsed();
    assert.equal(lines.length, 5, "one line per request");
    for (const [i, line] of lines.entries()) {
      assert.deepEqual(Object.keys(line), REQUEST_FIELDS, `line ${i}`);
      assert.equal(line.msg, "request");
      assert.equal(line.request_id, answers[i].headers.get(REQUEST_ID_HEADER));
      assert.equal(line.status, answers[i].status);
      assert.ok(typeof line.duration_ms === "number" && line.duration_ms >= 0);
    }
    const [notReady, ok, empty, missing, health] = lines;
    assert.deepEqual(
      { ...notReady, time: 0, duration_ms: 0, request_id: 0 },
      {
        time: 0,
        level: "warn",
        msg: "request",
        method: "POST",
        path: "/predict",
        status: 503,
        duration_ms: 0,
        bytes_in: 0, // refused before its body is read
        model: null,
        backend: null,
        request_id: 0,
      },
    );
    assert.equal(ok.level, "info");
    assert.equal(ok.status, 200);
    assert.equal(ok.path, "/predict", "the path, without the query");
    assert.equal(ok.bytes_in, jpeg.length);
    assert.equal(ok.model, "tiny-user-model");
    assert.equal(ok.backend, "wasm");
    assert.equal(ok.request_id, "q-1");
    assert.equal(empty.status, 400);
    assert.equal(empty.bytes_in, 0);
    assert.deepEqual([missing.method, missing.path, missing.status], ["GET", "/nope", 404]);
    assert.equal(missing.level, "info");
    assert.equal(health.bytes_in, 0);
  },
});

Deno.test({
  name: "bytes in is counted over a real socket, with and without Content-Length",
  ...t,
  async fn() {
    const { logger, parsed } = memoryLogger("info");
    const app = createApp({ classifier: await tinyClassifier() }, { logger });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
    const jpeg = await fixture("chelsea.jpg");
    try {
      const url = `http://127.0.0.1:${server.addr.port}/predict`;
      const sized = await fetch(url, { method: "POST", body: jpeg });
      assert.equal(sized.status, 200);
      await sized.body?.cancel();
      const chunked = await fetch(url, {
        method: "POST",
        body: new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(jpeg.subarray(0, 1000));
            controller.enqueue(jpeg.subarray(1000));
            controller.close();
          },
        }),
      });
      assert.equal(chunked.status, 200);
      await chunked.body?.cancel();
    } finally {
      await server.shutdown();
    }
    assert.deepEqual(parsed().map((l) => l.bytes_in), [jpeg.length, jpeg.length]);
  },
});

Deno.test("an unexpected error is logged at error level with its details, which the client never sees", async () => {
  const { logger, parsed } = memoryLogger("warn");
  const broken = {
    info: { name: "broken", backend: { name: "wasm" } },
    classes: 4,
    classify: () => Promise.reject(new Error("Secret detail at /work/main/x.ts:1")),
  } as unknown as Classifier;
  const app = createApp({ classifier: broken }, { logger });
  const res = await app.request("/predict", { method: "POST", body: "x" });
  assert.equal(res.status, 500);
  const body = await res.json();
  assert.equal(body.error.code, "internal");
  assert.doesNotMatch(JSON.stringify(body), /Secret/);
  assert.equal((await app.request("/healthz")).status, 200);
  const lines = parsed();
  assert.equal(lines.length, 1, "the 200 is below warn");
  assert.equal(lines[0].level, "error");
  assert.equal(lines[0].status, 500);
  assert.equal(lines[0].request_id, body.error.request_id);
  assert.match((lines[0].error as { message: string }).message, /Secret detail/);
});

async function readLines(
  stream: ReadableStream<Uint8Array>,
  until: (line: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>[]> {
  const lines: Record<string, unknown>[] = [];
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = JSON.parse(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
      lines.push(line);
      if (until(line)) return lines;
    }
  }
  throw new Error(`the output ended before the expected line: ${JSON.stringify(lines)}`);
}

Deno.test({
  name: "main.ts logs JSON start-up lines saying what was loaded and how long it took",
  ...t,
  async fn() {
    const paths = await writeTinyModel(64, 48);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "main.ts",
        "--model",
        paths.model,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--log-level",
        "debug",
        "--metrics-path",
        "/ops/metrics",
      ],
      cwd: ROOT,
      stdout: "piped",
      stderr: "null",
    }).spawn();
    try {
      const [stdout, rest] = child.stdout.tee();
      const lines = await readLines(stdout, (l) => /ready|Cannot load/.test(l.msg as string));
      for (const line of lines) {
        assert.equal(typeof line.msg, "string");
        assert.ok(["debug", "info", "warn", "error"].includes(line.level as string));
      }
      const listening = lines.find((l) => /^Listening on/.test(l.msg as string))!;
      assert.equal(listening.metrics_path, "/ops/metrics");
      const ready = lines.at(-1)!;
      assert.equal(ready.level, "info");
      assert.match(ready.msg as string, /^Model tiny-user-model ready in \d+ ms/);
      assert.equal(ready.model, "tiny-user-model");
      assert.equal(ready.backend, "wasm");
      assert.equal(ready.precision, "fp32");
      assert.equal(ready.parameters, 4 * 27 + 4 + 16 + 4);
      assert.ok(typeof ready.load_ms === "number" && ready.load_ms >= 0);

      const res = await fetch(`http://127.0.0.1:${listening.port}/ops/metrics`);
      const text = await res.text();
      assert.match(text, /^alexnet_edge_model_load_seconds\{model="tiny-user-model"\} [\d.e-]+$/m);
      // `rest` replays the output from the start, up to the scrape's line.
      const request = (await readLines(rest, (l) => l.msg === "request")).at(-1)!;
      assert.equal(request.path, "/ops/metrics");
      assert.equal(request.request_id, res.headers.get(REQUEST_ID_HEADER));
    } finally {
      child.kill("SIGTERM");
      await child.status;
    }
  },
});

Deno.test("a bad --log-level stops start-up with a JSON error line", async () => {
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", "--log-level", "loud"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.equal(code, 2);
  const line = JSON.parse(new TextDecoder().decode(stdout));
  assert.equal(line.level, "error");
  assert.match(line.msg, /^Cannot use log-level=loud/);
});
