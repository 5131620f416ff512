/**
 * `deno task edge:sim` for each profile, kept short for CI: the tiny test
 * model (tests/_helpers.ts; CI has no int8 model unless a test quantizes
 * one) and three requests. It checks that /predict and the page work under
 * each platform's constraints and that the report is filled in; the numbers
 * themselves are BENCHMARKS.md's, from the int8 and fp32 AlexNets.
 */
import assert from "node:assert/strict";
import { formatReport, runEdgeSim } from "../../bench/edge_sim.ts";
import { EDGE_PROFILES, PROFILES } from "../../src/platform/mod.ts";
import { writeTinyModel } from "../_helpers.ts";
import { writeQOperatorModel } from "../model/_qoperator_models.ts";

const tiny = await writeTinyModel();

for (const profile of EDGE_PROFILES) {
  Deno.test({
    name:
      `edge:sim --profile=${profile}: /predict and the page work under the platform's constraints`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const report = await runEdgeSim({ profile, model: tiny.model, requests: 3 });
      const why = `\n${formatReport(report)}\n${report.log.join("\n")}`;
      assert.ok(report.coldStartMs !== null, `never ready${why}`);
      assert.ok(report.pageOk, `the page failed${why}`);
      assert.ok(report.predictOk, `/predict failed${why}`);
      assert.deepEqual(report.predictStatuses, [200, 200, 200, 200]);
      assert.equal(
        report.modelSource,
        profile === "deno-deploy" ? "deployment files" : "fetched from URL",
      );
      assert.ok(report.peakRssBytes > 0);
      assert.equal(report.capBytes, PROFILES[profile].memoryBytes);
      assert.equal(report.cpuBudgetMs, PROFILES[profile].cpuMsPerRequest ?? null);
      assert.ok(report.ortOk, `/vendor/ort/* failed${why}`);
      assert.ok(report.cpuMs.p50! > 0 && report.cpuMs.p95! >= report.cpuMs.p50!);
      // The server ran as the profile asks: one thread (no Worker), its profile named in the log.
      const ready = report.log.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
        .find((l) => l.load_ms !== undefined);
      assert.equal(ready?.threads, 1, why);
      assert.ok(report.log.some((l) => l.includes(`"platform":"${profile}"`)), why);
      assert.match(formatReport(report), new RegExp(`^edge:sim ${profile}: tiny\\.onnx`));
    },
  });
}

Deno.test({
  name:
    "edge:sim on supabase: a model too large for 256 MB is refused with a message, the page still works",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // 40 MB of float weights: with the server's own share the estimate passes 256 MB. The model is
    // refused once fetched, before it is parsed, so the bytes need not be a real ONNX graph.
    const big = `${tiny.dir}/big.onnx`;
    await Deno.writeFile(big, new Uint8Array(40 * 1024 * 1024).fill(1));
    const report = await runEdgeSim({
      profile: "supabase",
      model: big,
      manifest: tiny.manifest,
      requests: 0,
    });
    assert.equal(report.coldStartMs, null);
    assert.match(
      report.loadError ?? "",
      /Cannot load tiny-user-model on supabase: with it the server needs about \d+ MB .*allows 256 MB/,
    );
    assert.deepEqual(report.predictStatuses, [503]);
    assert.equal(report.predictOk, false);
    assert.ok(report.pageOk, formatReport(report));
  },
});

Deno.test({
  name:
    "edge:sim on supabase: a QOperator int8 model (the zoo's format) is served on our int8 kernels",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // A small model of bvlcalexnet-12-int8's structure; the estimate for the real one is
    // platform_test.ts's (it fits 256 MB on our kernels only).
    const { dir, model } = await writeQOperatorModel({
      name: "qoperator-test-int8",
      classes: 100,
      prefix: "alexnet-edge-qop-",
    });
    const report = await runEdgeSim({ profile: "supabase", model, requests: 3 });
    const why = `\n${formatReport(report)}\n${report.log.join("\n")}`;
    assert.ok(report.predictOk, `/predict failed${why}`);
    assert.ok(
      report.log.some((l) =>
        l.includes("QOperator int8 model rewritten to QDQ for our int8 kernels")
      ),
      why,
    );
    await Deno.remove(dir, { recursive: true });
  },
});
