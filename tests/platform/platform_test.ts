import assert from "node:assert/strict";
import {
  checkModelFits,
  detectPlatform,
  estimateModelMemory,
  LOCAL_PROFILE,
  MEMORY_MODEL,
  modelRuntime,
  ModelTooLargeError,
  probeWorkers,
  processCpuMs,
  profileNamed,
  PROFILES,
  residentMemoryWarning,
  withMemoryOverride,
} from "../../src/platform/mod.ts";

const MB = 1024 * 1024;
const envOf = (vars: Record<string, string>) => (key: string) => vars[key];

Deno.test("detectPlatform is local with no marks, and keeps the backend's thread default", () => {
  const p = detectPlatform({ env: envOf({}), globals: {}, hasWorker: true });
  assert.equal(p.profile, LOCAL_PROFILE);
  assert.equal(p.workers, true);
  assert.equal(p.threads, undefined);
});

Deno.test("detectPlatform reads EDGE_PROFILE before the platforms' own marks", () => {
  const p = detectPlatform({
    env: envOf({ EDGE_PROFILE: "supabase", DENO_DEPLOYMENT_ID: "x" }),
    globals: { Netlify: {} },
    hasWorker: true,
  });
  assert.equal(p.profile.name, "supabase");
  assert.equal(p.reason, "EDGE_PROFILE");
});

Deno.test("detectPlatform recognizes Netlify, Supabase and Deno Deploy by their marks", () => {
  const netlify = detectPlatform({ env: envOf({}), globals: { Netlify: {} }, hasWorker: true });
  assert.equal(netlify.profile.name, "netlify");
  const edgeRuntime = detectPlatform({
    env: envOf({}),
    globals: { EdgeRuntime: "supabase-edge-runtime" },
    hasWorker: true,
  });
  assert.equal(edgeRuntime.profile.name, "supabase");
  const supabaseEnv = detectPlatform({
    env: envOf({ SUPABASE_URL: "https://x.supabase.co" }),
    globals: {},
    hasWorker: true,
  });
  assert.equal(supabaseEnv.profile.name, "supabase");
  const deploy = detectPlatform({
    env: envOf({ DENO_DEPLOYMENT_ID: "abc" }),
    globals: {},
    hasWorker: true,
  });
  assert.equal(deploy.profile.name, "deno-deploy");
  const deployFlag = detectPlatform({
    env: envOf({ DENO_DEPLOY: "true" }),
    globals: {},
    hasWorker: true,
  });
  assert.equal(deployFlag.profile.name, "deno-deploy");
});

Deno.test("detectPlatform runs one thread without a Worker constructor", () => {
  const p = detectPlatform({
    env: envOf({ EDGE_PROFILE: "netlify" }),
    globals: {},
    hasWorker: false,
  });
  assert.equal(p.workers, false);
  assert.equal(p.threads, 1);
});

Deno.test("detectPlatform runs one thread where the profile has no Worker API, even if one exists", () => {
  const p = detectPlatform({
    env: envOf({ EDGE_PROFILE: "supabase" }),
    globals: {},
    hasWorker: true,
  });
  assert.equal(p.workers, false);
  assert.equal(p.threads, 1);
});

Deno.test("profileNamed refuses an unknown profile, naming the known ones", () => {
  assert.throws(() => profileNamed("vercel"), (e: Error) => {
    assert.ok(e instanceof RangeError);
    assert.match(
      e.message,
      /^Cannot use edge profile "vercel": expected one of deno-deploy, netlify, supabase or local$/,
    );
    return true;
  });
  assert.equal(profileNamed("local"), LOCAL_PROFILE);
  assert.equal(profileNamed("supabase").memoryBytes, 256 * MB);
});

Deno.test("estimateModelMemory grows with the file, least per byte for int8 on our kernels", () => {
  assert.equal(estimateModelMemory(0), MEMORY_MODEL.baseBytes);
  const bytes = 10 * MB;
  const ours = estimateModelMemory(bytes, "int8", "int8-kernels");
  const theirs = estimateModelMemory(bytes, "int8", "onnxruntime");
  assert.ok(estimateModelMemory(bytes, "fp32") > ours && theirs > ours);
  assert.ok(estimateModelMemory(2 * bytes, "int8") > ours);
  // An int8 file is taken to run on our kernels unless the caller says otherwise.
  assert.equal(estimateModelMemory(bytes, "int8"), ours);
  // Linear in the file's size: each further 10 MB adds as much as the first.
  assert.ok(
    Math.abs(estimateModelMemory(2 * bytes, "int8") - 2 * ours + MEMORY_MODEL.baseBytes) <= 1,
  );
  // Float files run on onnxruntime whatever is asked.
  assert.equal(estimateModelMemory(bytes, "fp32", "int8-kernels"), estimateModelMemory(bytes));
});

Deno.test("estimateModelMemory lands within 15% of the peak RSS BENCHMARKS.md measured", () => {
  // Peak after 20 requests, `bench/rss.ts` run B (BENCHMARKS.md, "Peak RSS of the server"):
  // measured, not derived from the estimate's constants.
  const measured = [
    { what: "fp32 synthetic", bytes: 243_860_468, precision: "fp32", peak: 877 * MB },
    { what: "int8, our kernels, wasm", bytes: 60_984_008, precision: "int8", peak: 245 * MB },
    {
      what: "int8, onnxruntime-web",
      bytes: 60_984_008,
      precision: "int8",
      runtime: "onnxruntime" as const,
      peak: 440 * MB,
    },
  ];
  for (const { what, bytes, precision, runtime, peak } of measured) {
    const estimate = estimateModelMemory(bytes, precision, runtime);
    const off = Math.abs(estimate - peak) / peak;
    assert.ok(
      off <= 0.15,
      `${what}: estimate ${Math.round(estimate / MB)} MB, measured ${peak / MB} MB`,
    );
  }
});

Deno.test("modelRuntime: int8 runs on our kernels only with --int8 custom, wasm and one session", () => {
  assert.equal(modelRuntime("int8"), "int8-kernels");
  assert.equal(modelRuntime("int8", { backend: "auto", workers: 0 }), "int8-kernels");
  assert.equal(modelRuntime("int8", { int8: "ort" }), "onnxruntime");
  assert.equal(modelRuntime("int8", { workers: 2 }), "onnxruntime");
  assert.equal(modelRuntime("int8", { backend: "native" }), "onnxruntime");
  assert.equal(modelRuntime("fp32"), "onnxruntime");
});

Deno.test("checkModelFits refuses the fp32 AlexNet on every profile with a message saying what to do", () => {
  for (const profile of Object.values(PROFILES)) {
    assert.throws(
      () => checkModelFits(profile, "bvlcalexnet-12", 243_860_468, "fp32"),
      (e: Error) => {
        assert.ok(e instanceof ModelTooLargeError);
        assert.match(e.message, new RegExp(`^Cannot load bvlcalexnet-12 on ${profile.name}: `));
        assert.match(e.message, /MODEL=int8/);
        assert.equal((e as ModelTooLargeError).capBytes, profile.memoryBytes);
        return true;
      },
    );
  }
});

Deno.test("checkModelFits lets the int8 AlexNet onto Supabase's 256 MB on our kernels, not on onnxruntime", () => {
  const int8 = 61_110_496; // bvlcalexnet-12-int8.onnx (QOperator, rewritten for our kernels)
  for (const profile of Object.values(PROFILES)) {
    checkModelFits(profile, "int8", int8, "int8", "int8-kernels");
  }
  checkModelFits(PROFILES["deno-deploy"], "int8", int8, "int8", "onnxruntime");
  checkModelFits(PROFILES.netlify, "int8", int8, "int8", "onnxruntime");
  assert.throws(
    () => checkModelFits(PROFILES.supabase, "int8", int8, "int8", "onnxruntime"),
    /allows 256 MB; run it on our int8 kernels \(INT8=custom, no WORKERS\)/,
  );
});

Deno.test("checkModelFits still refuses an int8 model too large for our kernels on Supabase", () => {
  // 70 MB of int8 weights: over 256 MB even on our kernels, so no INT8 advice.
  assert.throws(
    () => checkModelFits(PROFILES.supabase, "big-int8", 70 * MB, "int8", "int8-kernels"),
    (e: Error) => {
      assert.ok(e instanceof ModelTooLargeError);
      assert.match(e.message, /allows 256 MB; choose a platform with more memory$/);
      assert.ok((e as ModelTooLargeError).neededBytes > 256 * MB);
      return true;
    },
  );
});

Deno.test("checkModelFits never refuses without a memory cap", () => {
  checkModelFits(LOCAL_PROFILE, "huge", 10 * 1024 * MB, "fp32");
});

Deno.test("residentMemoryWarning speaks only when the measured RSS is over the cap", () => {
  assert.equal(residentMemoryWarning(PROFILES.supabase, "m", 200 * MB), undefined);
  assert.match(
    residentMemoryWarning(PROFILES.supabase, "m", 300 * MB)!,
    /300 MB \(RSS\), over supabase's 256 MB/,
  );
  assert.equal(residentMemoryWarning(LOCAL_PROFILE, "m", 10 * 1024 * MB), undefined);
});

Deno.test("processCpuMs counts the CPU this process spends", () => {
  const before = processCpuMs();
  let x = 0;
  for (let i = 0; i < 5e7; i++) x = (x + i) % 7;
  const spent = processCpuMs() - before;
  assert.ok(x >= 0);
  assert.ok(spent > 0, `expected some CPU time, got ${spent} ms`);
});

Deno.test("the profiles carry only what today's docs publish, the safe figure where they disagree", async () => {
  // Deno Deploy: 512 MB (its pages give 512, 768 by default, up to 4 GB), no documented CPU
  // budget or event-loop limit (those were Deploy Classic's), deployments up to 1 GB.
  const deno = PROFILES["deno-deploy"];
  assert.equal(deno.memoryBytes, 512 * MB);
  assert.equal(deno.cpuMsPerRequest, undefined);
  assert.equal(deno.maxBlockMs, undefined);
  assert.equal(deno.codeBytes, 1024 * MB);
  assert.equal(PROFILES.netlify.cpuMsPerRequest, 50);
  assert.equal(PROFILES.netlify.workers, "probe"); // not documented
  assert.equal(PROFILES.supabase.workers, false);
  assert.equal(PROFILES.supabase.cpuMsPerRequest, 2000);
  // Each profile names the page it came from and the day it was read.
  const source = await Deno.readTextFile(new URL("../../src/platform/mod.ts", import.meta.url));
  for (
    const url of [
      "https://docs.deno.com/deploy/pricing_and_limits",
      "https://docs.netlify.com/edge-functions/limits/",
      "https://supabase.com/docs/guides/functions/limits",
    ]
  ) {
    assert.match(
      source,
      new RegExp(`${url.replaceAll(".", "\\.")} \\(read \\d{4}-\\d{2}-\\d{2}\\)`),
    );
  }
});

Deno.test("EDGE_MEMORY_MB overrides a profile's memory cap, and is refused when not a number", () => {
  const env = (value: string) => (k: string) => k === "EDGE_MEMORY_MB" ? value : undefined;
  assert.equal(withMemoryOverride(PROFILES["deno-deploy"], env("768")).memoryBytes, 768 * MB);
  assert.equal(withMemoryOverride(PROFILES.supabase, env("")).memoryBytes, 256 * MB);
  assert.throws(() => withMemoryOverride(PROFILES.supabase, env("lots")), RangeError);
  assert.throws(() => withMemoryOverride(PROFILES.supabase, env("-1")), RangeError);
  const p = detectPlatform({
    env: (k) => ({ EDGE_PROFILE: "deno-deploy", EDGE_MEMORY_MB: "1024" })[k],
  });
  assert.equal(p.profile.memoryBytes, 1024 * MB);
  assert.equal(PROFILES["deno-deploy"].memoryBytes, 512 * MB); // the profile itself is unchanged
});

Deno.test("a profile whose docs are silent on Workers assumes them where the runtime has one", () => {
  const env = (k: string) => k === "EDGE_PROFILE" ? "netlify" : undefined;
  assert.equal(detectPlatform({ env, hasWorker: true }).workers, true);
  assert.equal(detectPlatform({ env, hasWorker: false }).workers, false);
});

Deno.test({
  name: "probeWorkers starts a Worker that answers here, and says no without the constructor",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assert.equal(await probeWorkers(), true);
    const saved = globalThis.Worker;
    try {
      // deno-lint-ignore no-explicit-any
      delete (globalThis as any).Worker;
      assert.equal(await probeWorkers(), false);
    } finally {
      globalThis.Worker = saved;
    }
  },
});
