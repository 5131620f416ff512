import assert from "node:assert/strict";
import { createLogger } from "../../src/log.ts";
import { parseConfig } from "../../src/config.ts";
import { LOCAL_PROFILE, type Platform } from "../../src/platform/mod.ts";
import { createServer } from "../../src/server.ts";
import { writeQOperatorModel } from "../model/_qoperator_models.ts";
import { fixture, writeTinyModel } from "../_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const LOCAL: Platform = { profile: LOCAL_PROFILE, reason: "test", workers: true };

/** A server under the default flags (the inference Worker on), its log lines collected. */
async function serve(model: string) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: "info", write: (line) => lines.push(JSON.parse(line)) });
  const config = parseConfig(["--model", model, "--offline", "--backend", "wasm"]);
  const server = createServer(config, { logger, platform: LOCAL, waitForModel: false });
  await server.ready;
  assert.equal(server.state.loadError, undefined);
  return { server, lines };
}

const predict = (body: Uint8Array) =>
  new Request("http://local/predict?top_k=2", { method: "POST", body: body as BodyInit });

Deno.test({
  name: "under the default flags the server's log carries the inference Worker's lines: " +
    "a QOperator int8 model's rewrite, at info level",
  ...t,
  async fn() {
    const { dir, model } = await writeQOperatorModel({
      name: "qoperator-test",
      classes: 100,
      prefix: "alexnet-edge-qop-",
    });
    const { server, lines } = await serve(model);
    assert.ok(lines.some((l) => /one dedicated Worker/.test(String(l.msg))), "in a Worker");
    const rewrite = lines.find((l) =>
      String(l.msg).includes("QOperator int8 model rewritten to QDQ for our int8 kernels")
    );
    assert.ok(rewrite, lines.map((l) => l.msg).join("\n"));
    assert.equal(rewrite.level, "info");
    assert.equal(typeof rewrite.time, "string");
    const res = await server.fetch(predict(await fixture("chelsea.jpg")));
    assert.equal(res.status, 200);
    await server.state.classifier?.release();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "a killed inference Worker is replaced: /readyz says restarting meanwhile, the log says " +
    "why, and /predict answers again without a server restart",
  ...t,
  async fn() {
    const tiny = await writeTinyModel();
    const { server, lines } = await serve(tiny.model);
    const classifier = server.state.classifier!;
    const photo = await fixture("chelsea.jpg");
    const before = await (await server.fetch(predict(photo))).json();
    assert.deepEqual(classifier.state, { status: "ready" });

    assert.equal(classifier.restartWorker("was killed by the test"), true);
    assert.equal(classifier.state.status, "restarting");
    const readyz = await server.fetch(new Request("http://local/readyz"));
    assert.equal(readyz.status, 503);
    const body = await readyz.json();
    assert.equal(body.error.code, "not_ready");
    assert.match(body.error.message, /restarting/);
    // Sent while the fresh Worker starts: it waits for it.
    const during = await server.fetch(predict(photo));
    assert.equal(during.status, 200);
    const after = await during.json();
    assert.deepEqual(
      after.predictions,
      before.predictions,
      "the same answer from the fresh Worker",
    );
    assert.equal((await server.fetch(new Request("http://local/readyz"))).status, 200);
    const warn = lines.find((l) => l.level === "warn" && /killed by the test/.test(String(l.msg)));
    assert.ok(warn, lines.map((l) => l.msg).join("\n"));
    assert.ok(lines.some((l) => l.msg === "The inference Worker is ready again"));
    await classifier.release();
  },
});
