/**
 * `deno task bench`: the server measured side by side in one run, each
 * configuration as its own `main.ts` process on loopback.
 *
 *   deno task bench [--duration 10] [--runs 15] [--out bench/results] [--skip-native]
 *   deno task bench --only load   # 3. and 4., and the 1-thread time of 5. for the goal
 *
 * 1. Inputs: the synthetic AlexNet (generated when missing), its int8 version
 *    (`deno task quantize` when missing), and three images made now: a
 *    640×480 JPEG, a 12-megapixel JPEG and a 640×480 PNG (ImageMagick
 *    `convert` when present, else imagescript), from tests/fixtures/chelsea.jpg.
 * 2. Per backend, precision and thread count (onnxruntime-web wasm fp32 and
 *    int8, onnxruntime-node fp32 and int8, at 1 and 2 threads): cold start
 *    (spawn to the first 200 from /predict), the medians of /predict's
 *    `timings_ms` and of the HTTP round trip, and peak RSS (VmHWM). The first
 *    answer's top-1 is checked against wasm's at the same precision before
 *    anything is timed. The default configuration runs first and last (drift).
 * 3. Concurrency options, fp32 and int8 (our kernels): one session with 2
 *    intra-op threads in its inference Worker (the default), 2 workers with
 *    one single-threaded session each, and onnxruntime-node with 2 threads
 *    (fp32): autocannon at concurrency 1, 4 and 16, the options interleaved
 *    (requests/s, p50, p99, errors), each cell's backlog drained before the
 *    next starts, and peak RSS.
 * 4. A full queue: `--max-queue 4` under 16 connections, for each wasm option
 *    and for one session on the server's thread (`--inference-thread main`,
 *    the old default, fp32); probes measure how long a 503 takes while
 *    inference is busy.
 * 5. Inference without HTTP (bench/serve/_throughput.ts): one session at
 *    batch 1, 4, 8 (what micro-batching could gain at best), one thread for
 *    fp32 and int8 (the goal of each: 0.85 × cores / that time), the pool.
 *
 * Writes bench/results/<date>.json and prints the Markdown tables of
 * BENCHMARKS.md ("Serving", "Load", "Cold start").
 *
 * @module
 */
import { freePort, processMemory } from "../tests/_process.ts";
import { Buffer } from "node:buffer";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { ensureSyntheticModel } from "../src/model/store.ts";

const ROOT = new URL("../", import.meta.url);
const { values } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "10" },
    runs: { type: "string", default: "15" },
    out: { type: "string", default: "bench/results" },
    "skip-native": { type: "boolean", default: false },
    only: { type: "string" },
  },
});
if (values.only !== undefined && values.only !== "load") {
  throw new TypeError(`Cannot run --only ${values.only}: expected "load"`);
}
/** `--only load`: the load and full-queue parts, and the single-thread time the goal needs. */
const LOAD_ONLY = values.only === "load";
const DURATION = Number(values.duration);
const RUNS = Number(values.runs);
const started = performance.now();

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const r1 = (x: number) => Math.round(x * 10) / 10;
const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);
const note = (line: string) =>
  console.error(`[${((performance.now() - started) / 1000).toFixed(0)} s] ${line}`);

// ---------------------------------------------------------------- machine

async function machine() {
  const cpu = await Deno.readTextFile("/proc/cpuinfo").then(
    (t) => /model name\s*:\s*(.+)/.exec(t)?.[1] ?? "unknown",
    () => "unknown",
  );
  const commit = await new Deno.Command("git", {
    args: ["rev-parse", "--short", "HEAD"],
    cwd: ROOT,
  })
    .output().then((o) => new TextDecoder().decode(o.stdout).trim(), () => "unknown");
  const dirty = await new Deno.Command("git", { args: ["status", "--porcelain"], cwd: ROOT })
    .output().then((o) => o.stdout.length > 0, () => false);
  return {
    date: new Date().toISOString(),
    cpu,
    cores: navigator.hardwareConcurrency,
    memory_gb: Math.round(Deno.systemMemoryInfo().total / 1024 ** 3),
    loadavg: Deno.loadavg(),
    deno: Deno.version.deno,
    commit: (commit || "unknown (no git repository)") + (dirty ? " (uncommitted changes)" : ""),
    command: `deno task bench ${Deno.args.join(" ")}`.trim(),
  };
}

// ---------------------------------------------------------------- inputs

const INT8_MODEL = "models/alexnet-synthetic-int8.onnx";

async function exists(path: string | URL): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  const o = await new Deno.Command(cmd, { args, cwd: ROOT, stdout: "piped", stderr: "piped" })
    .output().catch((e) => ({ success: false, stdout: new Uint8Array(), stderr: String(e) }));
  const dec = (b: Uint8Array | string) => typeof b === "string" ? b : new TextDecoder().decode(b);
  return { ok: o.success, out: dec(o.stdout) + dec(o.stderr) };
}

async function prepareModels() {
  const t0 = performance.now();
  await ensureSyntheticModel(1, undefined, note);
  const fp32Ms = performance.now() - t0;
  let int8Ms = 0;
  if (!(await exists(new URL(INT8_MODEL, ROOT)))) {
    note("quantizing the synthetic AlexNet (deno task quantize)");
    const t1 = performance.now();
    const q = await run(Deno.execPath(), ["task", "quantize"]);
    if (!q.ok) throw new Error(`deno task quantize failed:\n${q.out}`);
    int8Ms = performance.now() - t1;
  }
  return { fp32_prepare_ms: Math.round(fp32Ms), int8_quantize_ms: Math.round(int8Ms) };
}

interface BenchImage {
  name: string;
  file: string;
  type: string;
  bytes: Uint8Array;
  width: number;
  height: number;
}

/** The three images, made from chelsea.jpg (448×288): upscaled, a little noise so they compress like photos. */
async function prepareImages(dir: string): Promise<{ images: BenchImage[]; tool: string }> {
  const src = new URL("tests/fixtures/chelsea.jpg", ROOT).pathname;
  const specs = [
    { name: "JPEG 640×480", file: "640x480.jpg", type: "image/jpeg", width: 640, height: 480 },
    {
      name: "JPEG 12 MP (4000×3000)",
      file: "12mp.jpg",
      type: "image/jpeg",
      width: 4000,
      height: 3000,
    },
    { name: "PNG 640×480", file: "640x480.png", type: "image/png", width: 640, height: 480 },
  ];
  const convert = (await run("convert", ["-version"])).ok;
  for (const s of specs) {
    const path = `${dir}/${s.file}`;
    if (convert) {
      const made = await run("convert", [
        src,
        "-resize",
        `${s.width}x${s.height}!`,
        "-seed",
        "1",
        "-attenuate",
        "0.4",
        "+noise",
        "Gaussian",
        ...(s.type === "image/jpeg" ? ["-quality", "90"] : []),
        path,
      ]);
      if (!made.ok) throw new Error(`convert failed: ${made.out}`);
    } else {
      const { Image } = await import("imagescript");
      const image = (await Image.decode(await Deno.readFile(src))).resize(s.width, s.height);
      const bytes = s.type === "image/png" ? await image.encode(1) : await image.encodeJPEG(90);
      await Deno.writeFile(path, bytes);
    }
  }
  const images = await Promise.all(
    specs.map(async (s) => ({ ...s, bytes: await Deno.readFile(`${dir}/${s.file}`) })),
  );
  return { images, tool: convert ? "ImageMagick convert" : "imagescript" };
}

// ---------------------------------------------------------------- servers

interface Server {
  url: string;
  pid: number;
  /** ms from spawn to the first 200 from /predict. */
  coldStartMs: number;
  peakRss(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts main.ts and waits for its first 200 from /predict (polling every 20 ms). */
async function startServer(args: string[], probe: BenchImage): Promise<Server> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "main.ts",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--offline",
      "--log-level",
      "error",
      ...args,
    ],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const errors: string[] = [];
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (c) => void errors.push(c) }),
  ).catch(() => {});
  let exited = false;
  const status = child.status.then((s) => (exited = true, s));
  const stop = async () => {
    if (!exited) child.kill("SIGKILL");
    await status;
    await stderr;
  };
  for (;;) {
    if (exited) throw new Error(`main.ts ${args.join(" ")} exited:\n${errors.join("")}`);
    if (performance.now() - t0 > 180_000) {
      await stop();
      throw new Error(`main.ts ${args.join(" ")} did not answer in 180 s`);
    }
    const res = await fetch(`${url}/predict`, {
      method: "POST",
      body: probe.bytes as BodyInit,
      headers: { "content-type": probe.type },
    }).catch(() => undefined);
    await res?.body?.cancel();
    if (res?.status === 200) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url,
    pid: child.pid,
    coldStartMs: performance.now() - t0,
    peakRss: async () => (await processMemory(child.pid)).peak,
    stop,
  };
}

interface PredictAnswer {
  predictions: { index: number }[];
  timings_ms: { decode: number; preprocess: number; inference: number; total: number };
}

async function predict(
  url: string,
  image: BenchImage,
): Promise<{ ms: number; body: PredictAnswer }> {
  const t = performance.now();
  const res = await fetch(`${url}/predict?top_k=1`, {
    method: "POST",
    body: image.bytes as BodyInit,
    headers: { "content-type": image.type },
  });
  const body = await res.json();
  const ms = performance.now() - t;
  if (res.status !== 200) {
    throw new Error(`/predict answered ${res.status}: ${JSON.stringify(body)}`);
  }
  return { ms, body };
}

interface StageRow {
  image: string;
  bytes: number;
  decode: number;
  preprocess: number;
  inference: number;
  total: number;
  http: number;
}

async function stages(url: string, image: BenchImage, runs: number): Promise<StageRow> {
  for (let i = 0; i < 3; i++) await predict(url, image);
  const rows: { ms: number; body: PredictAnswer }[] = [];
  for (let i = 0; i < runs; i++) rows.push(await predict(url, image));
  const m = (f: (r: { ms: number; body: PredictAnswer }) => number) => r1(median(rows.map(f)));
  return {
    image: image.name,
    bytes: image.bytes.length,
    decode: m((r) => r.body.timings_ms.decode),
    preprocess: m((r) => r.body.timings_ms.preprocess),
    inference: m((r) => r.body.timings_ms.inference),
    total: m((r) => r.body.timings_ms.total),
    http: m((r) => r.ms),
  };
}

// ---------------------------------------------------------------- 2. backends

interface Config {
  label: string;
  backend: "wasm" | "native";
  precision: "fp32" | "int8";
  threads: number;
  args: string[];
}

function configs(skipNative: boolean): Config[] {
  const list: Config[] = [];
  for (const backend of ["wasm", "native"] as const) {
    if (backend === "native" && skipNative) continue;
    for (const precision of ["fp32", "int8"] as const) {
      for (const threads of [2, 1]) {
        const model = precision === "fp32" ? "synthetic" : INT8_MODEL;
        list.push({
          label: `${
            backend === "wasm" ? "onnxruntime-web wasm" : "onnxruntime-node native"
          } ${precision}${backend === "wasm" && precision === "int8" ? " (our int8 kernels)" : ""}`,
          backend,
          precision,
          threads,
          args: ["--backend", backend, "--model", model, "--threads", String(threads)],
        });
      }
    }
  }
  return list;
}

// ---------------------------------------------------------------- 3. load

interface LoadRow {
  option: string;
  precision: Precision;
  connections: number;
  requests: number;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  non_2xx: number;
  errors: number;
  timeouts: number;
}

async function load(url: string, image: BenchImage, connections: number, seconds: number) {
  const result = await autocannon({
    url: `${url}/predict`,
    method: "POST",
    headers: { "content-type": image.type },
    body: Buffer.from(image.bytes),
    connections,
    duration: seconds,
    timeout: 30,
  });
  return {
    requests: result.requests.total,
    requests_per_s: r1(result.requests.total / seconds),
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    non_2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

/**
 * Waits until a server has answered what autocannon left queued when it stopped (up to one
 * request per connection): one more request, answered after them in order. Without it that
 * backlog runs during the next cell and takes the cores from the next option.
 */
async function drain(url: string, image: BenchImage): Promise<void> {
  await predict(url, image);
}

// ---------------------------------------------------------------- 4. full queue

/** 16 connections against --max-queue 4; a probe every 50 ms times its answer. */
async function fullQueue(url: string, image: BenchImage, seconds: number) {
  const probes: { status: number; ms: number; retryAfter: string | null }[] = [];
  let running = true;
  const prober = (async () => {
    await new Promise((r) => setTimeout(r, 1000)); // let the queue fill
    while (running) {
      const t = performance.now();
      const res = await fetch(`${url}/predict`, {
        method: "POST",
        body: image.bytes as BodyInit,
        headers: { "content-type": image.type },
      }).catch(() => undefined);
      await res?.body?.cancel();
      probes.push({
        status: res?.status ?? 0,
        ms: performance.now() - t,
        retryAfter: res?.headers.get("retry-after") ?? null,
      });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const loadResult = await load(url, image, 16, seconds);
  running = false;
  await prober;
  const refused = probes.filter((p) => p.status === 503);
  const ms = refused.map((p) => p.ms);
  const served = probes.filter((p) => p.status === 200).map((p) => p.ms);
  return {
    probes: probes.length,
    probes_503: refused.length,
    probes_200: served.length,
    probes_other: probes.filter((p) => p.status !== 200 && p.status !== 503).length,
    p50_200_ms: served.length ? r1(median(served)) : null,
    retry_after_on_every_503: refused.every((p) => p.retryAfter !== null),
    p50_503_ms: ms.length ? r1(median(ms)) : null,
    p99_503_ms: ms.length ? r1(quantile(ms, 0.99)) : null,
    max_503_ms: ms.length ? r1(Math.max(...ms)) : null,
    within_50ms: ms.length ? ms.filter((x) => x <= 50).length / ms.length : null,
    load: loadResult,
  };
}

// ---------------------------------------------------------------- 5. throughput

async function throughput(args: string[]) {
  const r = await run(Deno.execPath(), [
    "run",
    "--allow-all",
    "bench/serve/_throughput.ts",
    ...args,
  ]);
  const line = r.out.split("\n").find((l) => l.startsWith("{"));
  if (!r.ok || !line) {
    throw new Error(`bench/serve/_throughput.ts ${args.join(" ")} failed:\n${r.out}`);
  }
  return JSON.parse(line) as { mode: string; msPerImage: Record<string, number> };
}

// ---------------------------------------------------------------- main

const info = await machine();
note(`machine: ${info.cpu}, ${info.cores} cores, load average ${info.loadavg.join(" ")}`);
const models = await prepareModels();
const dir = await Deno.makeTempDir({ prefix: "alexnet-edge-bench-" });
const { images, tool } = await prepareImages(dir);
const small = images[0];
note(
  `images (${tool}): ${
    images.map((i) => `${i.file} ${(i.bytes.length / 1024).toFixed(0)} KB`).join(", ")
  }`,
);

// 2. Backends, precisions, threads: cold start, stages, peak RSS.
const backendRows = [];
let stageRows: StageRow[] = [];
const list = configs(values["skip-native"]);
// The default configuration again at the end: drift.
const order = LOAD_ONLY ? [] : [...list, list[0]];
const top1: Record<string, number> = {};
for (const [i, config] of order.entries()) {
  note(
    `server ${config.label}, ${config.threads} thread(s)${
      i === order.length - 1 ? " (again)" : ""
    }`,
  );
  const server = await startServer([...config.args, "--max-queue", "64"], small);
  try {
    // Correctness first: the same top-1 as wasm at this precision.
    const first = (await predict(server.url, small)).body.predictions[0].index;
    top1[`${config.backend} ${config.precision}`] ??= first;
    const wasmTop1 = top1[`wasm ${config.precision}`];
    if (wasmTop1 !== undefined && wasmTop1 !== first) {
      throw new Error(`${config.label}: top-1 ${first}, wasm ${config.precision} says ${wasmTop1}`);
    }
    const row = await stages(server.url, small, RUNS);
    if (i === 0) {
      stageRows = [row];
      for (const image of images.slice(1)) {
        stageRows.push(
          await stages(server.url, image, image.width * image.height > 4e6 ? 5 : RUNS),
        );
      }
    }
    backendRows.push({
      label: config.label,
      backend: config.backend,
      precision: config.precision,
      threads: config.threads,
      repeat: i === order.length - 1,
      top1: first,
      cold_start_ms: Math.round(server.coldStartMs),
      inference_ms: row.inference,
      total_ms: row.total,
      http_ms: row.http,
      peak_rss_mb: mb(await server.peakRss()),
    });
  } finally {
    await server.stop();
  }
}

// 3. Load, the options interleaved at each concurrency; all servers up at once (idle ones take
// no CPU: onnxruntime-node does not spin, onnxruntime-web's threads and our helpers wait).
type Precision = "fp32" | "int8";
interface LoadOption {
  label: string;
  precision: Precision;
  args: string[];
  /** Measured under load (3.); false: only against a full queue (4.). */
  load: boolean;
  /** Also measured against a full queue (4.). */
  fullQueue: boolean;
}
const MODEL_OF: Record<Precision, string> = { fp32: "synthetic", int8: INT8_MODEL };
const OPTIONS: LoadOption[] = (["fp32", "int8"] as const).flatMap((precision) => [
  {
    label: "one session, 2 threads, in its inference Worker (default)",
    precision,
    args: ["--backend", "wasm", "--threads", "2"],
    load: true,
    fullQueue: true,
  },
  // The old default, before the inference Worker, against a full queue only (the bench stays
  // under 10 minutes): its throughput is the default's; its 503s are what changed.
  ...(precision === "int8" ? [] : [{
    label: "one session, 2 threads, on the server's thread (--inference-thread main)",
    precision,
    args: ["--backend", "wasm", "--threads", "2", "--inference-thread", "main"],
    load: false,
    fullQueue: true,
  }]),
  {
    label: "worker pool, 2 workers × 1 thread",
    precision,
    args: ["--backend", "wasm", "--workers", "2"],
    load: true,
    fullQueue: true,
  },
  ...(values["skip-native"] || precision === "int8" ? [] : [{
    label: "onnxruntime-node native, 2 threads",
    precision,
    args: ["--backend", "native", "--threads", "2"],
    load: true,
    fullQueue: false,
  }]),
]);
const optionName = (o: { label: string; precision: Precision }) => `${o.precision}: ${o.label}`;
const LOADED = OPTIONS.filter((o) => o.load);
const loadRows: LoadRow[] = [];
const loadRss: Record<string, number> = {};
{
  const servers: Server[] = [];
  try {
    for (const option of LOADED) {
      note(`load server: ${optionName(option)}`);
      const model = MODEL_OF[option.precision];
      servers.push(
        await startServer([...option.args, "--model", model, "--max-queue", "64"], small),
      );
    }
    for (const s of servers) {
      await load(s.url, small, 4, 3); // warm-up
      await drain(s.url, small);
    }
    for (const c of [1, 4, 16]) {
      for (const [i, option] of LOADED.entries()) {
        note(`load: ${optionName(option)}, ${c} connection(s), ${DURATION} s`);
        loadRows.push({
          option: option.label,
          precision: option.precision,
          connections: c,
          ...(await load(servers[i].url, small, c, DURATION)),
        });
        await drain(servers[i].url, small);
      }
    }
    for (const [i, option] of LOADED.entries()) {
      loadRss[optionName(option)] = mb(await servers[i].peakRss());
    }
  } finally {
    for (const s of servers) await s.stop();
  }
}

// 4. A full queue, for the wasm options.
const queueRows = [];
for (const option of OPTIONS.filter((o) => o.fullQueue)) {
  note(`full queue: ${optionName(option)}`);
  const model = MODEL_OF[option.precision];
  const server = await startServer([...option.args, "--model", model, "--max-queue", "4"], small);
  try {
    queueRows.push({
      option: option.label,
      precision: option.precision,
      ...(await fullQueue(server.url, small, Math.max(4, DURATION / 2))),
    });
  } finally {
    await server.stop();
  }
}

// 5. Inference alone: one session at batch 1/4/8 (micro-batching's ceiling), single thread, pool.
note("inference alone: one session 2 threads batch 1, 4, 8; 1 thread; pool of 2");
const alone = {
  session_2_threads: LOAD_ONLY ? undefined : await throughput([
    "--mode",
    "session",
    "--threads",
    "2",
    "--batches",
    "1,4,8",
  ]),
  session_1_thread: await throughput(["--mode", "session", "--threads", "1", "--batches", "1"]),
  int8_session_1_thread: await throughput([
    "--mode",
    "session",
    "--threads",
    "1",
    "--batches",
    "1",
    "--manifest",
    INT8_MODEL.replace(/\.onnx$/, ".json"),
  ]),
  pool_2_workers: await throughput(["--mode", "pool", "--workers", "2"]),
};

// ---------------------------------------------------------------- report

const cores = navigator.hardwareConcurrency;
const singleThreadMs = alone.session_1_thread.msPerImage["1"];
const goal = 0.85 * cores / (singleThreadMs / 1000);
const int8SingleThreadMs = alone.int8_session_1_thread.msPerImage["1"];
const int8Goal = 0.85 * cores / (int8SingleThreadMs / 1000);
const elapsed = Math.round((performance.now() - started) / 1000);
const loadavgEnd = Deno.loadavg();
const results = {
  machine: { ...info, loadavg_end: loadavgEnd },
  elapsed_s: elapsed,
  models,
  images: images.map(({ name, file, type, width, height, bytes }) => ({
    name,
    file,
    type,
    width,
    height,
    bytes: bytes.length,
  })),
  image_tool: tool,
  stages: stageRows,
  backends: backendRows,
  load: loadRows,
  load_peak_rss_mb: loadRss,
  full_queue: queueRows,
  inference_alone: alone,
  goal: { cores, single_thread_ms: r1(singleThreadMs), c16_requests_per_s_goal: r1(goal) },
  goal_int8: {
    cores,
    single_thread_ms: r1(int8SingleThreadMs),
    c16_requests_per_s_goal: r1(int8Goal),
  },
};
const outDir = new URL(`${values.out.replace(/\/$/, "")}/`, ROOT);
await Deno.mkdir(outDir, { recursive: true });
const outFile = new URL(`${info.date.slice(0, 10)}${LOAD_ONLY ? "-load" : ""}.json`, outDir);
await Deno.writeTextFile(outFile, JSON.stringify(results, null, 2) + "\n");
await Deno.remove(dir, { recursive: true });

const table = (head: string[], rows: (string | number | null)[][]) =>
  [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.map((x) => x ?? "–").join(" | ")} |`),
  ].join("\n");

console.log(
  `${info.date.slice(0, 10)}, ${info.cpu}, ${cores} cores, ${info.memory_gb} GB, ` +
    `load average (1/5/15 min) ${info.loadavg.map((x) => x.toFixed(1)).join(" ")} at start, ` +
    `${loadavgEnd.map((x) => x.toFixed(1)).join(" ")} at the end; Deno ${info.deno}; ` +
    `commit ${info.commit}; \`${info.command}\`; ${elapsed} s; images by ${tool}.\n`,
);
if (!LOAD_ONLY) {
  console.log(
    "### Per-stage latency (wasm fp32, 2 threads; medians of /predict `timings_ms`, ms)\n",
  );
  console.log(table(
    ["image", "size", "decode", "preprocess", "inference", "total", "HTTP round trip"],
    stageRows.map((r) => [
      r.image,
      `${(r.bytes / 1024).toFixed(0)} KB`,
      r.decode,
      r.preprocess,
      r.inference,
      r.total,
      r.http,
    ]),
  ));
  console.log("\n### Inference per backend and precision (640×480 JPEG; cold start; peak RSS)\n");
  console.log(table(
    ["backend", "threads", "inference (ms)", "total (ms)", "cold start (ms)", "peak RSS (MB)"],
    backendRows.map((r) => [
      r.label + (r.repeat ? " (again, last)" : ""),
      r.threads,
      r.inference_ms,
      r.total_ms,
      r.cold_start_ms,
      r.peak_rss_mb,
    ]),
  ));
}
console.log("\n### Load (autocannon, 640×480 JPEG, loopback, synthetic AlexNet)\n");
console.log(table(
  [
    "model",
    "option",
    "connections",
    "requests/s",
    "p50 (ms)",
    "p99 (ms)",
    "p99/p50",
    "non-2xx",
    "errors",
  ],
  loadRows.map((r) => [
    r.precision,
    r.option,
    r.connections,
    r.requests_per_s,
    r.p50_ms,
    r.p99_ms,
    r1(r.p99_ms / r.p50_ms),
    r.non_2xx,
    r.errors + r.timeouts,
  ]),
));
console.log(
  `\nPeak RSS under load: ${Object.entries(loadRss).map(([k, v]) => `${k} ${v} MB`).join("; ")}.`,
);
console.log(
  `Goal at 16 connections: fp32 0.85 × ${cores} cores / ${
    r1(singleThreadMs)
  } ms (one thread, batch 1) = ${r1(goal)} requests/s; int8 0.85 × ${cores} / ${
    r1(int8SingleThreadMs)
  } ms = ${r1(int8Goal)} requests/s.`,
);
console.log("\n### A full queue (`--max-queue 4`, 16 connections; probes every 50 ms)\n");
console.log(table(
  [
    "model",
    "option",
    "load: 200 / 503",
    "probes",
    "503",
    "200 (p50 ms)",
    "503 p50 (ms)",
    "503 p99 (ms)",
    "503 max (ms)",
    "503 ≤ 50 ms",
    "Retry-After",
  ],
  queueRows.map((r) => [
    r.precision,
    r.option,
    `${r.load.requests - r.load.non_2xx} / ${r.load.non_2xx}`,
    r.probes,
    r.probes_503,
    `${r.probes_200} (${r.p50_200_ms ?? "–"})`,
    r.p50_503_ms,
    r.p99_503_ms,
    r.max_503_ms,
    r.within_50ms === null ? null : `${Math.round(r.within_50ms * 100)}%`,
    r.retry_after_on_every_503 ? "yes" : "no",
  ]),
));
console.log("\n### Inference alone (no HTTP; ms per image, medians)\n");
console.log(table(
  ["option", "batch 1", "batch 4", "batch 8"],
  [
    [
      "one session, 2 threads",
      ...["1", "4", "8"].map((b) =>
        alone.session_2_threads ? r1(alone.session_2_threads.msPerImage[b]) : null
      ),
    ],
    ["one session, 1 thread", r1(alone.session_1_thread.msPerImage["1"]), null, null],
    ["int8: one session, 1 thread", r1(int8SingleThreadMs), null, null],
    [
      "pool, 2 workers × 1 thread (2 in flight)",
      r1(alone.pool_2_workers.msPerImage["1"]),
      null,
      null,
    ],
  ],
));
console.log(`\nWrote ${outFile.pathname.replace(ROOT.pathname, "")}`);
Deno.exit(0);
