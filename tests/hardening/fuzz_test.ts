import assert from "node:assert/strict";
import { fuzzServer } from "./fuzz.ts";

// `deno task fuzz` runs 20,000 cases at the default 40 MP limit; the suite runs 2,000 with the
// image limit at 2 MP and fixtures up to 120 KB, so each case stays cheap.
const CASES = 2000;
const RSS_LIMIT_MIB = 512;

Deno.test({
  name: "2,000 fuzzed requests: the server stays up, answers 200 or 4xx, stays under 512 MiB",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const report = await fuzzServer({
      cases: CASES,
      seed: 1,
      concurrency: 4,
      maxPixels: "2mp",
      maxBodyBytes: 2 * 1024 * 1024,
      maxFixtureBytes: 120_000,
    });
    const summary = JSON.stringify({ ...report, violations: undefined });
    assert.equal(report.violationCount, 0, report.violations.join("\n"));
    assert.ok(report.cases >= CASES, summary);
    for (const status of Object.keys(report.statuses)) {
      assert.ok(
        ["200", "400", "413", "415", "422"].includes(status),
        `status ${status}: ${summary}`,
      );
    }
    assert.ok(report.statuses["200"] > 0 && report.statuses["422"] > 0, summary);
    assert.ok(report.stayedUp, "the server answered /healthz after the run");
    assert.deepEqual(report.errorLines, [], "no unexpected failure in the server log");
    assert.equal(report.exitCode, 0, "it stopped cleanly on SIGTERM");
    assert.ok(report.rssPeakMiB < RSS_LIMIT_MIB, `peak RSS ${report.rssPeakMiB} MiB: ${summary}`);
    console.log(`fuzz: ${summary}`);
  },
});
