import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { parseConfig } from "../../src/config.ts";
import { createLogger } from "../../src/api/mod.ts";
import { estimateModelMemory, type Platform, PROFILES } from "../../src/platform/mod.ts";
import { createServer } from "../../src/server.ts";
import { fixture, TINY_LABELS, writeTinyModel } from "../_helpers.ts";
import { logEntries } from "../hardening/_server.ts";

const MB = 1024 * 1024;

const t = { sanitizeOps: false, sanitizeResources: false };
const quiet = createLogger({ level: "error", write: () => {} });

/** A Netlify-like platform: one thread, the profile's caps. */
function platform(memoryBytes?: number): Platform {
  const profile = { ...PROFILES.netlify, memoryBytes: memoryBytes ?? PROFILES.netlify.memoryBytes };
  return { profile, reason: "test", workers: false, threads: 1 };
}

async function modelServer(path: string) {
  const bytes = await Deno.readFile(path);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(bytes),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/tiny.onnx`,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    close: () => server.shutdown(),
  };
}

Deno.test({
  name: "a server with MODEL_URL fetches the model into memory and /predict reports its CPU time",
  ...t,
  async fn() {
    const tiny = await writeTinyModel();
    const remote = await modelServer(tiny.model);
    try {
      const config = parseConfig([], (k) =>
        ({
          MODEL_URL: remote.url,
          MODEL_SHA256: remote.sha256,
          MODEL_MANIFEST: tiny.manifest,
        })[k]);
      const server = createServer(config, { logger: quiet, platform: platform() });
      await server.ready;
      assert.equal(server.state.loadError, undefined);
      assert.equal(server.state.classifier?.info.backend.threads, 1);
      const res = await server.fetch(
        new Request("http://edge/predict?top_k=2", {
          method: "POST",
          body: await fixture("chelsea.jpg"),
          headers: { "content-type": "image/jpeg" },
        }),
      );
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.ok(TINY_LABELS.includes(body.predictions[0].label));
      assert.equal(typeof body.timings_ms.cpu, "number");
      assert.ok(body.timings_ms.cpu > 0);
      assert.equal(Number(res.headers.get("x-cpu-time-ms")), body.timings_ms.cpu);
      await server.state.classifier?.release();
    } finally {
      await remote.close();
    }
  },
});

Deno.test({
  name: "a server refuses a fetched model whose sha256 is not the configured one, saying so",
  ...t,
  async fn() {
    const tiny = await writeTinyModel();
    const remote = await modelServer(tiny.model);
    try {
      const config = parseConfig([
        "--model-url",
        remote.url,
        "--model-sha256",
        "0".repeat(64),
        "--manifest",
        tiny.manifest,
      ]);
      const server = createServer(config, { logger: quiet, platform: platform() });
      await server.ready;
      assert.equal(server.state.classifier, undefined);
      assert.match(server.state.loadError!, /sha256 mismatch/);
      const res = await server.fetch(new Request("http://edge/readyz"));
      assert.equal(res.status, 503);
      await res.body?.cancel();
    } finally {
      await remote.close();
    }
  },
});

Deno.test({
  name: "a server refuses, before loading it, a model that cannot fit the platform's memory",
  ...t,
  async fn() {
    const tiny = await writeTinyModel();
    const config = parseConfig(["--model", tiny.model, "--offline"]);
    const server = createServer(config, { logger: quiet, platform: platform(64 * 1024 * 1024) });
    await server.ready;
    assert.equal(server.state.classifier, undefined);
    assert.match(
      server.state.loadError!,
      /^Cannot load .*tiny\.onnx on netlify: with it the server needs about \d+ MB of memory .*allows 64 MB/,
    );
  },
});

Deno.test({
  name: "a server asked to fetch a model it cannot name refuses with what to set",
  ...t,
  async fn() {
    const config = parseConfig(["--model-url", "http://127.0.0.1:1/x.onnx", "--model", "x.onnx"]);
    const server = createServer(config, { logger: quiet, platform: platform() });
    await server.ready;
    assert.match(server.state.loadError!, /^Cannot fetch x\.onnx from MODEL_URL: .*MODEL_MANIFEST/);
  },
});

Deno.test({
  name: "a draining server answers 503 not_ready with Connection: close",
  ...t,
  async fn() {
    const tiny = await writeTinyModel();
    const server = createServer(parseConfig(["--model", tiny.model, "--offline"]), {
      logger: quiet,
      platform: platform(),
    });
    await server.ready;
    assert.equal(await server.drain(1000), true);
    const res = await server.fetch(new Request("http://edge/healthz"));
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("connection"), "close");
    assert.equal((await res.json()).error.code, "not_ready");
    await server.state.classifier?.release();
  },
});

Deno.test({
  name:
    "on an edge profile a cold isolate holds /predict until the model is loaded, /readyz answers at once",
  ...t,
  async fn() {
    const tiny = await writeTinyModel();
    const remote = await modelServer(tiny.model);
    try {
      const config = parseConfig([
        "--model-url",
        remote.url,
        "--model-sha256",
        remote.sha256,
        "--manifest",
        tiny.manifest,
      ]);
      const server = createServer(config, { logger: quiet, platform: platform() });
      const ready = await server.fetch(new Request("http://edge/readyz"));
      assert.equal(ready.status, 503);
      await ready.body?.cancel();
      const res = await server.fetch(
        new Request("http://edge/predict", {
          method: "POST",
          body: await fixture("chelsea.jpg"),
          headers: { "content-type": "image/jpeg" },
        }),
      );
      assert.equal(res.status, 200);
      assert.ok(server.state.classifier);
      await res.body?.cancel();
      await server.state.classifier?.release();
    } finally {
      await remote.close();
    }
  },
});

Deno.test({
  name:
    "MODEL=int8 with INT8=ort on Supabase is refused for its 256 MB before anything is downloaded",
  ...t,
  async fn() {
    const env = { MODEL: "int8", INT8: "ort", EDGE_PROFILE: "supabase" };
    const config = parseConfig([], (k) => env[k as keyof typeof env]);
    const server = createServer(config, { logger: quiet });
    assert.equal(server.platform.profile.name, "supabase");
    await server.ready;
    // A download would have failed first, with a network error: CI has no network.
    assert.match(
      server.state.loadError!,
      /^Cannot load bvlcalexnet-12-int8 on supabase: with it the server needs about 399 MB of memory \(58 MB of int8 weights\), the platform allows 256 MB; run it on our int8 kernels \(INT8=custom, no WORKERS\) or choose a platform with more memory$/,
    );
    const res = await server.fetch(new Request("http://edge/readyz"));
    assert.equal(res.status, 503);
    // The detail stays in the log; the body says where to find it.
    assert.match((await res.json()).error.message, /the server log says why/);
  },
});

Deno.test({
  name:
    "MODEL=int8 on Supabase passes the memory check on our int8 kernels and goes on to fetch it",
  ...t,
  async fn() {
    // Nothing listens on port 1: the fetch fails at once, after the memory check.
    const env = { MODEL: "int8", EDGE_PROFILE: "supabase", MODEL_URL: "http://127.0.0.1:1/m.onnx" };
    const config = parseConfig([], (k) => env[k as keyof typeof env]);
    const server = createServer(config, { logger: quiet });
    await server.ready;
    assert.ok(server.state.loadError, "loaded a model it could not fetch");
    assert.doesNotMatch(server.state.loadError!, /needs about|allows 256 MB/);
    assert.match(server.state.loadError!, /^Cannot fetch the model: .*127\.0\.0\.1:1/s);
  },
});

Deno.test({
  name:
    "on an edge profile images over its 2.1 MP limit are refused before decoding, whatever --max-pixels allows",
  ...t,
  async fn() {
    const tiny = await writeTinyModel();
    const config = parseConfig(["--model", tiny.model, "--offline", "--max-pixels", "40mp"]);
    const server = createServer(config, { logger: quiet, platform: platform() });
    await server.ready;
    // A PNG signature and IHDR claiming 2000 x 1100 (2.2 MP), and nothing else.
    const header = new Uint8Array(33);
    header.set([
      0x89,
      0x50,
      0x4e,
      0x47,
      0x0d,
      0x0a,
      0x1a,
      0x0a,
      0,
      0,
      0,
      13,
      0x49,
      0x48,
      0x44,
      0x52,
    ]);
    new DataView(header.buffer).setUint32(16, 2000);
    new DataView(header.buffer).setUint32(20, 1100);
    const res = await server.fetch(
      new Request("http://edge/predict", { method: "POST", body: header }),
    );
    assert.equal(res.status, 422);
    assert.match((await res.json()).error.message, /over the 2.1 megapixel limit/);
    await server.state.classifier?.release();
  },
});

/** A server on the tiny model on `platform`, its log lines collected. */
async function loggedServer(on: Platform, tiny?: { model: string }) {
  tiny ??= await writeTinyModel();
  const lines: string[] = [];
  const logger = createLogger({ level: "info", write: (line) => lines.push(line) });
  const config = parseConfig(["--model", tiny.model, "--offline", "--backend", "wasm"]);
  const server = createServer(config, { logger, platform: on });
  await server.ready;
  assert.equal(server.state.loadError, undefined);
  return { server, lines };
}

const RSS_WARNING = /^With tiny-user-model loaded the process holds \d+ MB \(RSS\), over netlify's/;

Deno.test({
  name: "on an edge profile an RSS over the cap, measured once the model is loaded, is a warning",
  ...t,
  async fn() {
    // A cap the estimate for the tiny model passes, and 256 MB held here: the RSS is over it.
    const tiny = await writeTinyModel();
    const cap = estimateModelMemory((await Deno.stat(tiny.model)).size) + MB;
    const ballast = new Uint8Array(256 * MB).fill(1);
    const { server, lines } = await loggedServer(platform(cap), tiny);
    const warnings = logEntries(lines).filter((e) => e.level === "warn");
    assert.ok(warnings.some((e) => RSS_WARNING.test(String(e.msg))), lines.join("\n"));
    assert.equal(ballast[ballast.length - 1], 1);
    await server.state.classifier?.release();
    // Under a cap far above the RSS, nothing is said.
    const roomy = await loggedServer(platform(1024 * 1024 * MB), tiny);
    assert.ok(!roomy.lines.some((l) => l.includes("(RSS), over")), roomy.lines.join("\n"));
    await roomy.server.state.classifier?.release();
  },
});

Deno.test({
  name: "on an edge profile with an event-loop limit a blocked event loop is logged as a warning",
  ...t,
  async fn() {
    // No profile in PROFILES documents a limit today: one that does, as Deploy Classic's 1 s did.
    const limit = 1000;
    const on = platform();
    const { server, lines } = await loggedServer({
      ...on,
      profile: { ...on.profile, maxBlockMs: limit },
    });
    // Block this thread past the profile's limit, as a long synchronous decode would.
    const end = performance.now() + limit + 500;
    while (performance.now() < end) { /* blocking */ }
    const blocked = () =>
      logEntries(lines).find((e) =>
        e.level === "warn" && /^The event loop was blocked for \d+ ms$/.test(String(e.msg))
      );
    // The watchdog's timer fires once the loop is free again (bounded wait, no clock asserted).
    for (let i = 0; !blocked(); i++) {
      assert.ok(i < 1000, `no warning:\n${lines.join("\n")}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(blocked()!.limit_ms, limit);
    assert.ok(Number(blocked()!.blocked_ms) > limit);
    await server.state.classifier?.release();
  },
});
