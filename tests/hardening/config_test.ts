import assert from "node:assert/strict";
import { parseConfig, parseCorsOrigins, parsePixels } from "../../src/config.ts";

Deno.test("the hardening settings default to 40 MP, 32 queued, 30 s and CORS off", () => {
  const config = parseConfig([]);
  assert.equal(config.maxPixels, 40_000_000);
  assert.equal(config.maxQueue, 32);
  assert.equal(config.requestTimeoutMs, 30_000);
  assert.equal(config.corsOrigins, undefined);
});

Deno.test("the hardening settings come from flags first, then the environment", () => {
  const env: Record<string, string> = {
    MAX_PIXELS: "12mp",
    MAX_QUEUE: "8",
    REQUEST_TIMEOUT: "2s",
    CORS_ORIGIN: "https://a.example",
  };
  const fromEnv = parseConfig([], (k) => env[k]);
  assert.deepEqual(
    [fromEnv.maxPixels, fromEnv.maxQueue, fromEnv.requestTimeoutMs, fromEnv.corsOrigins],
    [12_000_000, 8, 2000, ["https://a.example"]],
  );
  const fromFlags = parseConfig([
    "--max-pixels",
    "1000000",
    "--max-queue",
    "64",
    "--request-timeout",
    "500ms",
    "--cors-origin",
    "https://a.example, http://localhost:5173",
  ], (k) => env[k]);
  assert.deepEqual(
    [fromFlags.maxPixels, fromFlags.maxQueue, fromFlags.requestTimeoutMs, fromFlags.corsOrigins],
    [1_000_000, 64, 500, ["https://a.example", "http://localhost:5173"]],
  );
  assert.equal(parseConfig(["--cors-origin", "off"]).corsOrigins, undefined);
  assert.deepEqual(parseConfig(["--cors-origin", "*"]).corsOrigins, ["*"]);
});

Deno.test("bad hardening settings are refused at start-up with the setting named", () => {
  assert.throws(() => parsePixels("lots"), /^RangeError: Cannot use max-pixels=lots/);
  assert.throws(() => parsePixels("0"), RangeError);
  assert.equal(parsePixels("1.5mp"), 1_500_000);
  assert.throws(() => parseConfig(["--max-queue", "0"]), /max-queue=0/);
  assert.throws(() => parseConfig(["--max-queue", "2.5"]), /max-queue=2.5/);
  assert.throws(
    () => parseConfig(["--request-timeout", "0"]),
    /request-timeout=0: it must be above 0/,
  );
  assert.throws(() => parseConfig(["--request-timeout", "soon"]), /request-timeout=soon/);
  for (const origin of ["example.com", "https://a.example/path", "javascript:alert(1)", "null"]) {
    assert.throws(() => parseCorsOrigins(origin), /Cannot use cors-origin=/, origin);
  }
});

Deno.test("the pipeline's settings default to 16 per batch, 64 readers, 2 s idle and 5 s reads", () => {
  const config = parseConfig([]);
  assert.deepEqual(
    [config.maxBatch, config.maxReaders, config.bodyIdleTimeoutMs, config.bodyReadTimeoutMs],
    [16, 64, 2000, 5000],
  );
  const env: Record<string, string> = { MAX_BATCH: "4", BODY_READ_TIMEOUT: "10s" };
  const set = parseConfig([
    "--max-readers",
    "8",
    "--body-idle-timeout",
    "500ms",
    "--max-batch",
    "2",
  ], (k) => env[k]);
  assert.deepEqual(
    [set.maxBatch, set.maxReaders, set.bodyIdleTimeoutMs, set.bodyReadTimeoutMs],
    [2, 8, 500, 10_000],
  );
  assert.throws(() => parseConfig(["--max-batch", "0"]), /max-batch=0/);
  assert.throws(() => parseConfig(["--max-readers", "1.5"]), /max-readers=1.5/);
  assert.throws(() => parseConfig(["--body-idle-timeout", "0"]), /body-idle-timeout=0/);
  assert.throws(() => parseConfig(["--body-read-timeout", "later"]), /body-read-timeout=later/);
});
