import assert from "node:assert/strict";
import { createLogger } from "../src/api/mod.ts";
import { parseConfig } from "../src/config.ts";
import { LOCAL_PROFILE, type Platform, PROFILES } from "../src/platform/mod.ts";
import { createServer } from "../src/server.ts";
import { fixture, writeTinyModel } from "./_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const LOCAL: Platform = { profile: LOCAL_PROFILE, reason: "test", workers: true };
/** Netlify offers Workers, yet its profile keeps inference on the server's thread. */
const NETLIFY: Platform = { profile: PROFILES.netlify, reason: "test", workers: true };
const IN_WORKER = /one dedicated Worker/;

/** A server on the tiny model, its log lines collected. */
async function tinyServer(args: string[], platform: Platform) {
  const tiny = await writeTinyModel();
  const lines: string[] = [];
  const logger = createLogger({ level: "info", write: (line) => lines.push(line) });
  const config = parseConfig(["--model", tiny.model, "--offline", "--backend", "wasm", ...args]);
  const server = createServer(config, { logger, platform, waitForModel: false });
  await server.ready;
  assert.equal(server.state.loadError, undefined);
  return { server, log: () => lines.join("\n") };
}

const predict = (body: Uint8Array) =>
  new Request("http://local/predict?top_k=2", {
    method: "POST",
    body: body as BodyInit,
    headers: { "content-type": "image/jpeg" },
  });

Deno.test({
  name: "self-hosted, the one session runs in a dedicated Worker and a full queue is answered " +
    "503 with Retry-After while it infers",
  ...t,
  async fn() {
    const { server, log } = await tinyServer(["--max-queue", "1", "--threads", "2"], LOCAL);
    assert.match(log(), IN_WORKER);
    assert.equal(server.state.classifier?.info.backend.threads, 2);
    const photo = await fixture("jpeg_large_420.jpg");
    let firstDone = false;
    const first = server.fetch(predict(photo)).finally(() => (firstDone = true));
    const refused = await server.fetch(predict(photo));
    assert.equal(firstDone, false, "refused while the first is still being classified");
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get("retry-after"), "1");
    assert.equal((await refused.json()).error.code, "overloaded");
    const served = await first;
    assert.equal(served.status, 200);
    assert.equal((await served.json()).predictions.length, 2);
    // Its place is back.
    assert.equal((await server.fetch(predict(photo))).status, 200);
    await server.state.classifier?.release();
  },
});

Deno.test({
  name: "an edge profile, and --inference-thread main, keep inference on the server's thread",
  ...t,
  async fn() {
    for (
      const [args, platform] of [[[], NETLIFY], [["--inference-thread", "main"], LOCAL]] as const
    ) {
      const { server, log } = await tinyServer([...args], platform);
      assert.doesNotMatch(log(), IN_WORKER, `${platform.profile.name} ${args.join(" ")}`);
      const res = await server.fetch(predict(await fixture("chelsea.jpg")));
      assert.equal(res.status, 200);
      await server.state.classifier?.release();
    }
  },
});

Deno.test({
  name: "--inference-thread worker on a platform without Workers warns and runs on the thread",
  ...t,
  async fn() {
    const none: Platform = { profile: PROFILES.supabase, reason: "test", workers: false };
    const { server, log } = await tinyServer(["--inference-thread", "worker"], none);
    assert.doesNotMatch(log(), IN_WORKER);
    assert.match(log(), /No Worker API on supabase: inference runs on the server's thread/);
    assert.equal((await server.fetch(predict(await fixture("chelsea.jpg")))).status, 200);
    await server.state.classifier?.release();
  },
});
