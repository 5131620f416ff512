import assert from "node:assert/strict";
import { createApp } from "../../src/api/mod.ts";
import { encodePng } from "../../src/api/_png.ts";
import { fixture } from "../_helpers.ts";
import { runHttpCorpus } from "./_http_corpus.ts";
import { tinyState } from "./_state.ts";

// `deno task fuzz` sends the hostile report's sizes (136,000-image batches, 300,000 empty
// elements, 32 slow clients) to the real server; the suite sends small ones in-process.

Deno.test({
  name: "HTTP hostile corpus: each case gets its 4xx, and a normal /predict answers meanwhile",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const state = await tinyState();
    const bodyReadMs = 1000;
    // Fewer queue places than slow clients: a client still uploading must not hold one.
    const app = createApp(state, {
      maxQueue: 2,
      bodyIdleTimeoutMs: 500,
      bodyReadTimeoutMs: bodyReadMs,
    });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
    try {
      const results = await runHttpCorpus({
        url: `http://127.0.0.1:${server.addr.port}`,
        model: state.classifier!.info.name,
        photo: await fixture("camera_gray.jpg"),
        tinyImage: encodePng({ width: 1, height: 1, channels: 3, data: new Uint8Array(3) }),
        batch: 2000,
        empties: 20_000,
        slowClients: 4,
        slowHeaderMs: 1000,
        bodyReadMs,
      });
      for (const r of results) {
        const what = `${r.name}: ${JSON.stringify(r)}`;
        for (const status of r.statuses) assert.ok(r.allowed.includes(status), what);
        assert.equal(r.normal, 200, what);
      }
      // Slow clients were still connected when the normal request got its answer.
      for (const name of ["stalled bodies", "trickled bodies", "slow headers"]) {
        const r = results.find((r) => r.name === name)!;
        assert.ok(r.normalFirst, `${name}: ${JSON.stringify(r)}`);
        assert.equal(r.statuses.length, 4);
      }
    } finally {
      await server.shutdown();
    }
  },
});
