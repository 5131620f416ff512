/**
 * `deno task edge:sim --profile=deno-deploy|netlify|supabase`: the server
 * under an edge platform's constraints, driven, and measured against the
 * platform's budgets (src/platform/mod.ts).
 *
 * The server runs in its own process through the platform's entrypoint
 * (main.ts; deploy/netlify's edge function behind a CDN stand-in; deploy/
 * supabase's function under /alexnet) with only --allow-net, --allow-read and
 * --allow-env (so the filesystem is read-only and nothing else is reachable;
 * `root` + `readOnlyRoot` run it from another folder, such as deploy:check's
 * copy of the upload set, with --allow-read limited to that folder),
 * no Worker constructor (bench/_edge_preload.ts), `EDGE_PROFILE` set. Deno
 * Deploy reads the model from the deployment's files; Netlify and Supabase
 * fetch it at cold start from a loopback URL served here, verified by sha256.
 * The profile's memory cap is watched by RSS (/proc, every 50 ms; with
 * `--kill-at-cap` the process is killed there, as the platform would).
 *
 * The report: cold start (spawn to /readyz 200, to the first answer, and the
 * server's CPU until ready: /proc/<pid>/stat),
 * peak RSS against the cap, CPU ms per /predict (the server's own
 * `timings_ms.cpu`, p50/p95) against the budget, longest event-loop block
 * before and after start-up, and whether /predict, the page and the page's
 * in-browser runtime (/vendor/ort/*) worked. A budget a platform does not
 * document (Deno Deploy's CPU per request) is reported as "none documented".
 *
 * On a fresh clone there is no int8 model: `--model int8` (the default) then
 * makes the synthetic one with our quantizer (`deno task quantize`) first.
 *
 * ```sh
 * deno task edge:sim --profile=netlify                 # int8 model, 20 requests
 * deno task edge:sim --profile=supabase --model fp32 --requests 5 --json
 * deno task edge:sim --profile=supabase --unchecked     # load it anyway: how far over the cap?
 * ```
 *
 * @module
 */
import { freePort, processMemory, readLines } from "../tests/_process.ts";
import { parseArgs } from "node:util";
import { createHash } from "node:crypto";
import { type ResultTable, writeResult } from "./_results.ts";
import {
  EDGE_PROFILES,
  type EdgeProfileName,
  estimateModelMemory,
  PROFILES,
} from "../src/platform/mod.ts";

const ROOT = new URL("../", import.meta.url);
const MB = 1024 * 1024;

/** Options of {@linkcode runEdgeSim}. */
export interface EdgeSimOptions {
  profile: EdgeProfileName;
  /** ONNX file to serve; its manifest is beside it (same name, .json) unless `manifest` is given. */
  model: string;
  /** Its manifest. */
  manifest?: string;
  /** /predict requests after the first (default 10). */
  requests?: number;
  /** Image posted to /predict (default tests/fixtures/chelsea.jpg). */
  image?: string;
  /** Give up waiting for readiness after this long (default 180 s). */
  readyTimeoutMs?: number;
  /** Extra environment for the server. */
  env?: Record<string, string>;
  /** Kill the server when its sampled RSS passes the cap, as the platform would (default false: report only). */
  killAtCap?: boolean;
  /** The folder the server runs from (its deno.json, entrypoints and page); default this checkout. */
  root?: URL;
  /** Grant --allow-read to `root` only (default false: read anywhere). */
  readOnlyRoot?: boolean;
  /**
   * Deno Deploy only: read the model from the deployment's files (default), or fetch it at cold
   * start from a URL as the other platforms do (models are git-ignored, so `deno deploy` never
   * uploads them).
   */
  modelFrom?: "files" | "url";
  /** Override the profile's memory cap (bytes), as EDGE_MEMORY_MB does for the server. */
  memoryBytes?: number;
}

/** What one simulation measured. */
export interface EdgeSimReport {
  profile: EdgeProfileName;
  model: string;
  modelBytes: number;
  /** How the model reached the server: "deployment files" or "fetched from URL". */
  modelSource: string;
  /** Spawn to /readyz 200, ms; null when it never got ready. */
  coldStartMs: number | null;
  /** Spawn to the first /predict answer, ms. */
  firstAnswerMs: number | null;
  /** CPU the server process used until ready (module loading, model fetch and load), ms. */
  coldStartCpuMs: number | null;
  /** Peak resident memory (VmHWM, else the highest sample), bytes. */
  peakRssBytes: number;
  /** The server's own estimate before loading (src/platform/mod.ts), for comparison. */
  estimateBytes: number;
  capBytes: number;
  /** Killed for passing the cap, as the platform would. */
  killedOverCap: boolean;
  /** Why the model did not load (the server's /readyz message), if it did not. */
  loadError?: string;
  /** CPU ms per /predict, first request left out; null without answers. */
  cpuMs: { first: number | null; p50: number | null; p95: number | null; max: number | null };
  /** Wall ms per /predict (client side), first request left out. */
  wallMs: { p50: number | null; p95: number | null };
  /** The profile's CPU budget per request, ms; null where the platform documents none. */
  cpuBudgetMs: number | null;
  /** Longest event-loop blocks, ms: while starting, and after /readyz turned 200. */
  blockMs: { startup: number; afterStart: number };
  /** The profile's event-loop limit, ms; null where the platform documents none. */
  maxBlockMs: number | null;
  /** The page answered 200 HTML and its script 200. */
  pageOk: boolean;
  /** The page's in-browser runtime (/vendor/ort/ES module and WebAssembly) answered 200. */
  ortOk: boolean;
  /** Every /predict answered 200 with predictions and a CPU time. */
  predictOk: boolean;
  predictStatuses: number[];
  /** The server's last lines, for a failure's message. */
  log: string[];
}

/** CPU time a process has used (user + system, all threads), ms, from /proc (Linux; 0 elsewhere). */
async function processCpu(pid: number): Promise<number> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms (USER_HZ 100)
  } catch {
    return 0;
  }
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/** A loopback server for one file: the "configured URL" of a platform with a code cap. */
function serveFile(path: string): { url: string; close(): Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
    const file = await Deno.open(path);
    const { size } = await file.stat();
    return new Response(file.readable, {
      headers: { "content-length": String(size), "content-type": "application/octet-stream" },
    });
  });
  const name = path.slice(path.lastIndexOf("/") + 1);
  return { url: `http://127.0.0.1:${server.addr.port}/${name}`, close: () => server.shutdown() };
}

/** Whether the page's in-browser runtime is served: an ES module and its WebAssembly. */
async function ortServed(url: string): Promise<boolean> {
  let ok = true;
  for (const [file, type] of ORT_FILES) {
    const res = await fetch(`${url}/vendor/ort/${file}`).catch(() => undefined);
    const body = new Uint8Array(await res?.arrayBuffer().catch(() => undefined) ?? []);
    const wasm = file.endsWith(".wasm");
    ok &&= res?.status === 200 && (res.headers.get("content-type") ?? "").startsWith(type) &&
      (wasm
        ? body[0] === 0 && body[1] === 0x61 && body[2] === 0x73 && body[3] === 0x6d
        : body.length > 0);
  }
  return ok;
}

/** What the page loads from /vendor/ort/ on the wasm backend (static/local.js). */
export const ORT_FILES: readonly [string, string][] = [
  ["ort.wasm.min.mjs", "text/javascript"],
  ["ort-wasm-simd-threaded.mjs", "text/javascript"],
  ["ort-wasm-simd-threaded.wasm", "application/wasm"],
];

const quantile = (sorted: number[], q: number) =>
  sorted.length === 0
    ? null
    : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];

/**
 * Runs one profile's simulation and returns its report (it never throws for
 * a server that fails; the report says so).
 *
 * @example
 * ```ts
 * const report = await runEdgeSim({ profile: "netlify", model: "models/alexnet-synthetic-int8.onnx" });
 * console.log(formatReport(report));
 * ```
 */
export async function runEdgeSim(options: EdgeSimOptions): Promise<EdgeSimReport> {
  const profile = PROFILES[options.profile];
  const root = options.root ?? ROOT;
  const model = options.model;
  const manifest = options.manifest ?? model.replace(/\.onnx$/i, "") + ".json";
  const modelBytes = (await Deno.stat(model)).size;
  const precision = await Deno.readTextFile(manifest).then(
    (text) => JSON.parse(text).precision ?? "fp32",
    () => "fp32",
  );
  const port = freePort();
  const base = options.profile === "supabase" ? "/alexnet" : "";
  const url = `http://127.0.0.1:${port}${base}`;
  // A clean environment: the user's MODEL, THREADS, MAX_PIXELS... must not change what is measured.
  const passThrough = [
    "PATH",
    "HOME",
    "DENO_DIR",
    "XDG_CACHE_HOME",
    "TMPDIR",
    "NPM_CONFIG_REGISTRY",
  ];
  const env: Record<string, string> = {
    ...Object.fromEntries(
      passThrough.flatMap((k) => Deno.env.get(k) === undefined ? [] : [[k, Deno.env.get(k)!]]),
    ),
    NO_COLOR: "1",
    EDGE_PROFILE: options.profile,
    EDGE_SIM_PORT: String(port),
    EDGE_SIM_ROOT: root.pathname,
    MODEL_OFFLINE: "1",
    LOG_LEVEL: "info",
    ...(options.memoryBytes ? { EDGE_MEMORY_MB: String(options.memoryBytes / MB) } : {}),
    ...options.env,
  };
  let entry: string;
  let args: string[] = [];
  let fileServer: { url: string; close(): Promise<void> } | undefined;
  let modelSource: string;
  if (options.profile === "deno-deploy" && options.modelFrom !== "url") {
    entry = "main.ts";
    args = [
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--model",
      model,
      "--manifest",
      manifest,
    ];
    modelSource = "deployment files";
  } else {
    fileServer = serveFile(model);
    env.MODEL_URL = fileServer.url;
    env.MODEL_SHA256 = await sha256Of(model);
    env.MODEL_MANIFEST = manifest;
    entry = options.profile === "netlify"
      ? new URL("bench/_edge_netlify_host.ts", ROOT).pathname
      : options.profile === "supabase"
      ? "deploy/supabase/functions/alexnet/index.ts"
      : "main.ts";
    if (options.profile === "deno-deploy") args = ["--host", "127.0.0.1", "--port", String(port)];
    modelSource = "fetched from URL";
  }
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      options.readOnlyRoot ? `--allow-read=${root.pathname}` : "--allow-read",
      "--allow-env",
      "--no-prompt",
      "--config",
      new URL("deno.json", root).pathname,
      "--preload",
      new URL("bench/_edge_preload.ts", ROOT).pathname,
      new URL(entry, root).pathname,
      ...args,
    ],
    cwd: root.pathname,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const drained = Promise.all([
    readLines(child.stdout, lines, 5_000),
    readLines(child.stderr, lines, 5_000),
  ]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });

  // Memory watch: the platform's cap, by RSS.
  let peakSample = 0;
  let killedOverCap = false;
  const cap = options.memoryBytes ?? profile.memoryBytes!;
  const watch = setInterval(async () => {
    const { rss } = await processMemory(child.pid);
    peakSample = Math.max(peakSample, rss);
    if (options.killAtCap && rss > cap && !exited && !killedOverCap) {
      killedOverCap = true;
      child.kill("SIGKILL");
    }
  }, 50);
  let lastPeak = 0;
  const notePeak = async () => {
    if (!exited) lastPeak = Math.max(lastPeak, (await processMemory(child.pid)).peak);
  };

  const report: EdgeSimReport = {
    profile: options.profile,
    model: model.slice(model.lastIndexOf("/") + 1),
    modelBytes,
    modelSource,
    coldStartMs: null,
    firstAnswerMs: null,
    coldStartCpuMs: null,
    peakRssBytes: 0,
    estimateBytes: 0,
    capBytes: cap,
    killedOverCap: false,
    cpuMs: { first: null, p50: null, p95: null, max: null },
    wallMs: { p50: null, p95: null },
    cpuBudgetMs: profile.cpuMsPerRequest ?? null,
    blockMs: { startup: 0, afterStart: 0 },
    maxBlockMs: profile.maxBlockMs ?? null,
    pageOk: false,
    ortOk: false,
    predictOk: false,
    predictStatuses: [],
    log: [],
  };
  let readyAt = Infinity;
  try {
    // Cold start: until /readyz answers 200, or the model fails to load (503 with a reason).
    const deadline = started + (options.readyTimeoutMs ?? 180_000);
    while (!exited && performance.now() < deadline) {
      const res = await fetch(`${url}/readyz`).catch(() => undefined);
      await res?.body?.cancel();
      if (res?.status === 200) {
        report.coldStartMs = Math.round(performance.now() - started);
        report.coldStartCpuMs = await processCpu(child.pid);
        readyAt = Date.now();
        break;
      }
      const failed = lines.find((l) => l.includes("Cannot load the model"));
      if (failed) {
        report.loadError = /"msg":"((?:[^"\\]|\\.)*)"/.exec(failed)?.[1] ?? failed;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await notePeak();

    // The page: its HTML and its script.
    if (!exited) {
      const page = await fetch(`${url}/`).catch(() => undefined);
      const html = await page?.text().catch(() => "") ?? "";
      const script = await fetch(`${url}/app.js`).catch(() => undefined);
      await script?.body?.cancel();
      report.pageOk = page?.status === 200 &&
        /text\/html/.test(page.headers.get("content-type") ?? "") && html.includes("<html") &&
        script?.status === 200;
      report.ortOk = await ortServed(url);
    }

    // A model that failed to load: /predict must say so (503), not hang.
    if (report.coldStartMs === null && !exited) {
      const res = await fetch(`${url}/predict`, { method: "POST", body: "x" }).catch(() =>
        undefined
      );
      await res?.body?.cancel();
      report.predictStatuses.push(res?.status ?? 0);
    }

    // /predict: one cold request, then the measured ones.
    if (report.coldStartMs !== null) {
      const image = await Deno.readFile(
        options.image ?? new URL("tests/fixtures/chelsea.jpg", ROOT),
      );
      const cpu: number[] = [];
      const wall: number[] = [];
      let ok = true;
      const total = 1 + (options.requests ?? 10);
      for (let i = 0; i < total && !exited; i++) {
        const t0 = performance.now();
        const res = await fetch(`${url}/predict?top_k=3`, {
          method: "POST",
          body: image,
          headers: { "content-type": "image/jpeg" },
        }).catch(() => undefined);
        const body = await res?.json().catch(() => undefined);
        const ms = performance.now() - t0;
        report.predictStatuses.push(res?.status ?? 0);
        const spent = Number(res?.headers.get("x-cpu-time-ms"));
        const good = res?.status === 200 && Array.isArray(body?.predictions) &&
          body.predictions.length === 3 && typeof body?.timings_ms?.cpu === "number" &&
          body.timings_ms.cpu === spent;
        ok &&= good;
        if (i === 0) {
          report.firstAnswerMs = Math.round(performance.now() - started);
          report.cpuMs.first = good ? spent : null;
        } else if (good) {
          cpu.push(spent);
          wall.push(ms);
        }
        await notePeak();
      }
      cpu.sort((a, b) => a - b);
      wall.sort((a, b) => a - b);
      const r1 = (n: number | null) => n === null ? null : Math.round(n * 10) / 10;
      report.cpuMs.p50 = r1(quantile(cpu, 0.5));
      report.cpuMs.p95 = r1(quantile(cpu, 0.95));
      report.cpuMs.max = r1(cpu.at(-1) ?? null);
      report.wallMs = { p50: r1(quantile(wall, 0.5)), p95: r1(quantile(wall, 0.95)) };
      report.predictOk = ok && report.predictStatuses.length === total;
    }
  } finally {
    await notePeak();
    clearInterval(watch);
    if (!exited) child.kill("SIGTERM");
    const killTimer = setTimeout(() => !exited && child.kill("SIGKILL"), 10_000);
    await status;
    clearTimeout(killTimer);
    await drained;
    await fileServer?.close();
  }
  report.killedOverCap = killedOverCap;
  report.estimateBytes = estimateModelMemory(modelBytes, precision);
  report.peakRssBytes = Math.max(lastPeak, peakSample);
  for (const line of lines) {
    const m = /^edge-sim-block (\{.*\})$/.exec(line);
    if (!m) continue;
    const { blocked_ms, at } = JSON.parse(m[1]);
    // A block reported after readiness may have started before it: count it as start-up.
    const key = at - blocked_ms > readyAt ? "afterStart" : "startup";
    report.blockMs[key] = Math.max(report.blockMs[key], blocked_ms);
  }
  report.log = lines.filter((l) => !l.startsWith("edge-sim-block")).slice(-40);
  return report;
}

const mb = (n: number) => `${Math.round(n / MB)} MB`;

/**
 * The report as lines for people.
 *
 * @example
 * ```ts
 * console.log(formatReport(await runEdgeSim({ profile: "supabase", model })));
 * ```
 */
export function formatReport(r: EdgeSimReport): string {
  const fits = r.capBytes - r.peakRssBytes;
  const budget = r.cpuBudgetMs === null
    ? "no per-request budget documented"
    : `budget ${r.cpuBudgetMs} ms: ${
      r.cpuMs.p95! <= r.cpuBudgetMs
        ? "within"
        : `over by ${Math.round(r.cpuMs.p95! - r.cpuBudgetMs)} ms`
    }`;
  const cpu = r.cpuMs.p50 === null
    ? "no answers"
    : `p50 ${r.cpuMs.p50} ms, p95 ${r.cpuMs.p95} ms (first ${r.cpuMs.first} ms); ${budget}`;
  return [
    `edge:sim ${r.profile}: ${r.model} (${mb(r.modelBytes)}, ${r.modelSource})`,
    `  cold start     ${
      r.coldStartMs === null ? "never ready" : `${r.coldStartMs} ms to ready`
    }, ` +
    `${r.firstAnswerMs ?? "-"} ms to the first answer; ${
      r.coldStartCpuMs ?? "-"
    } ms of CPU to ready`,
    `  peak RSS       ${mb(r.peakRssBytes)} of ${mb(r.capBytes)}: ${
      fits >= 0 ? `fits, ${mb(fits)} to spare` : `over by ${mb(-fits)}`
    }${r.killedOverCap ? " (killed at the cap)" : ""}${
      r.loadError ? " with no model loaded" : ""
    }; the server estimated ${mb(r.estimateBytes)}`,
    `  CPU / request  ${cpu}`,
    `  wall / request p50 ${r.wallMs.p50 ?? "-"} ms, p95 ${r.wallMs.p95 ?? "-"} ms`,
    `  event loop     longest block ${r.blockMs.afterStart} ms after start-up ` +
    `(${r.blockMs.startup} ms while starting); limit ${r.maxBlockMs ?? "none documented"}${
      r.maxBlockMs === null ? "" : " ms"
    }`,
    `  /predict       ${r.predictOk ? "ok" : "FAILED"} (${r.predictStatuses.join(" ") || "none"})` +
    (r.loadError ? `: ${r.loadError}` : ""),
    `  page           ${r.pageOk ? "ok" : "FAILED"}`,
    `  /vendor/ort    ${r.ortOk ? "ok" : "FAILED"}`,
  ].join("\n");
}

/**
 * Reports as one markdown table (BENCHMARKS.md, "Edge").
 *
 * @example
 * ```ts
 * console.log(markdownTable([await runEdgeSim({ profile: "netlify", model })]));
 * ```
 */
export function markdownTable(reports: EdgeSimReport[]): string {
  const head =
    "| profile | model | cold start: ready / first answer (ms) | CPU to ready (ms) | peak RSS / cap (MB) | CPU per /predict p50 / p95 (ms) / budget | longest block after start-up (ms) | /predict, page |";
  const rows = reports.map((r) => {
    const served = r.loadError ? "refused" : r.predictOk ? "ok" : "FAILED";
    const cpu = r.cpuMs.p50 === null ? "-" : `${r.cpuMs.p50} / ${r.cpuMs.p95}`;
    return `| ${r.profile} | ${r.model} | ${r.coldStartMs ?? "-"} / ${r.firstAnswerMs ?? "-"} | ${
      r.coldStartCpuMs ?? "-"
    } | ${Math.round(r.peakRssBytes / MB)} / ${Math.round(r.capBytes / MB)} | ${cpu} / ${
      r.cpuBudgetMs ?? "none"
    } | ${r.loadError ? "-" : r.blockMs.afterStart} | ${served}, ${r.pageOk ? "ok" : "FAILED"} |`;
  });
  return [head, `|${" --- |".repeat(8)}`, ...rows].join("\n");
}

/** The model files `--model int8|fp32` stand for, best first. */
const MODEL_CHOICES: Record<string, string[]> = {
  int8: ["models/bvlcalexnet-12-int8.onnx", "models/alexnet-synthetic-int8.onnx"],
  fp32: ["models/bvlcalexnet-12.onnx", "models/alexnet-synthetic.onnx"],
};

async function findModel(name: string): Promise<string | undefined> {
  for (const path of MODEL_CHOICES[name] ?? [name]) {
    const full = path.startsWith("/") ? path : new URL(path, ROOT).pathname;
    if (await Deno.stat(full).then(() => true, () => false)) return full;
  }
  return undefined;
}

/**
 * The model file `--model` names; for `int8` on a fresh clone (no int8 model yet) the synthetic
 * AlexNet is quantized first with `deno task quantize`, as one line says.
 *
 * @example
 * ```ts
 * const model = await resolveModel("int8"); // ".../models/alexnet-synthetic-int8.onnx"
 * ```
 */
export async function resolveModel(name: string): Promise<string> {
  const found = await findModel(name);
  if (found) return found;
  if (name === "int8") {
    console.log(
      "edge:sim: no int8 model yet: making the synthetic one with our quantizer (deno task quantize)",
    );
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--config", new URL("deno.json", ROOT).pathname, "quantize"],
      cwd: ROOT.pathname,
      stdout: "null",
      stderr: "piped",
    }).output();
    const made = code === 0 ? await findModel(name) : undefined;
    if (made) return made;
    throw new Error(
      `Cannot make the int8 model: deno task quantize failed\n${
        new TextDecoder().decode(stderr).trim().split("\n").slice(-5).join("\n")
      }`,
    );
  }
  throw new TypeError(
    `Cannot find a ${name} model: run \`deno task quantize\` (int8) or \`deno task model\` (fp32), ` +
      "or pass --model path/to/model.onnx",
  );
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      profile: { type: "string", multiple: true },
      model: { type: "string", default: "int8" },
      manifest: { type: "string" },
      requests: { type: "string", default: "20" },
      json: { type: "boolean", default: false },
      markdown: { type: "boolean", default: false },
      image: { type: "string" },
      "kill-at-cap": { type: "boolean", default: false },
      unchecked: { type: "boolean", default: false },
      "memory-mb": { type: "string" },
      write: { type: "boolean", default: false },
    },
  });
  const profiles = (values.profile ?? [...EDGE_PROFILES]).flatMap((p) => p.split(","));
  for (const p of profiles) {
    if (!EDGE_PROFILES.includes(p as EdgeProfileName)) {
      console.error(`Cannot simulate "${p}": expected ${EDGE_PROFILES.join(", ")}`);
      Deno.exit(2);
    }
  }
  const model = await resolveModel(values.model!);
  const reports = [];
  for (const profile of profiles as EdgeProfileName[]) {
    const report = await runEdgeSim({
      profile,
      model,
      manifest: values.manifest,
      requests: Number(values.requests),
      image: values.image,
      killAtCap: values["kill-at-cap"],
      memoryBytes: values["memory-mb"] ? Number(values["memory-mb"]) * MB : undefined,
      // The server applies no profile (so refuses nothing); the harness still measures against it.
      // No WebGPU probe either: edge platforms have no GPU (and the probe costs RSS here).
      env: values.unchecked ? { EDGE_PROFILE: "local", BACKEND: "wasm" } : undefined,
    });
    reports.push(report);
    if (!values.json && !values.markdown) console.log(formatReport(report) + "\n");
  }
  if (values.markdown) console.log(markdownTable(reports));
  if (values.write) console.error(`wrote ${await writeEdgeResult(reports, Deno.args)}`);
  if (values.json) {
    console.log(JSON.stringify(reports.map(({ log: _, ...r }) => r), null, 2));
  }
  console.log(
    `# ${
      new Date().toISOString()
    } deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores`,
  );
  // --unchecked asks how far over the cap a model goes: a refusal is its answer, not a failure.
  const failed = reports.filter((r) =>
    !r.pageOk || !r.ortOk || (!r.predictOk && !(values.unchecked && r.killedOverCap))
  );
  if (failed.length > 0) {
    console.error(`edge:sim FAILED on ${failed.map((r) => r.profile).join(", ")}`);
    Deno.exit(1);
  }
}

/** One run of the profiles as bench/results/edge-<date>.json (BENCHMARKS.md's edge section). */
function writeEdgeResult(reports: EdgeSimReport[], args: string[]): Promise<string> {
  const mb = (b: number) => Math.round(b / MB);
  const ms = (v: number | null) => v === null ? "-" : String(Math.round(v));
  const table: ResultTable = {
    caption:
      `The synthetic int8 AlexNet under each profile, ${reports[0]?.predictStatuses.length ?? 0} ` +
      "requests of the test photo",
    columns: [
      "profile",
      "model from",
      "ready / first answer (ms)",
      "CPU to ready (ms)",
      "peak RSS / cap (MB)",
      "CPU per /predict p50 / p95 (ms)",
      "CPU budget (ms)",
      "/predict, page, runtime",
    ],
    rows: reports.map((r) => [
      r.profile,
      r.modelSource,
      `${ms(r.coldStartMs)} / ${ms(r.firstAnswerMs)}`,
      ms(r.coldStartCpuMs),
      `${mb(r.peakRssBytes)} / ${mb(r.capBytes)}`,
      `${r.cpuMs.p50 ?? "-"} / ${r.cpuMs.p95 ?? "-"}`,
      r.cpuBudgetMs === null ? "none documented" : String(r.cpuBudgetMs),
      [r.predictOk, r.pageOk, r.ortOk].map((ok) => ok ? "ok" : "failed").join(", "),
    ]),
  };
  return writeResult({
    bench: "edge",
    title: "Edge: the server under each platform's budgets",
    command: `deno task edge:sim ${args.join(" ")}`,
    notes: [
      "Each profile's server in its own process, as bench/edge_sim.ts describes: the platform's " +
      "entrypoint, --allow-net/read/env only, no Worker constructor, EDGE_PROFILE set; Deno " +
      "Deploy reads the model from the deployment's files, Netlify and Supabase fetch it at cold " +
      "start from a loopback URL and verify its sha256. Peak RSS is the process's VmHWM; CPU per " +
      "request is the server's own timings_ms.cpu (first request left out).",
    ],
    tables: [table],
  });
}
