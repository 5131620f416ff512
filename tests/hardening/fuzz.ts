/**
 * `deno task fuzz`: the mutation fuzzer (tests/hardening/_fuzz.ts) against
 * the real server in its own process on loopback, with the tiny test model so
 * the time goes to the input path, not to inference; then the HTTP hostile
 * corpus (tests/hardening/_http_corpus.ts) at the hostile report's sizes.
 * Prints what it saw and exits 1 when a rule broke, a corpus case got a
 * status it must not or held up a normal /predict, the server went down, its
 * peak resident memory passed --rss-limit, or it did not stop cleanly
 * (exit 0) on SIGTERM.
 *
 * ```sh
 * deno task fuzz                                  # 20,000 cases, seed 1, and the HTTP corpus
 * deno task fuzz --cases 5000 --seed 7 --concurrency 8 --max-pixels 40mp --no-http
 * deno task fuzz --images                         # the hostile image corpus at full size
 * deno task fuzz --cases 0 --model models/alexnet-synthetic-int8.onnx   # HTTP corpus, int8
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { encodePng } from "../../src/api/_png.ts";
import { fixture, writeTinyModel } from "../_helpers.ts";
import { type HttpCaseResult, runHttpCorpus } from "./_http_corpus.ts";
import { generateCases, loadCorpus, runFuzz } from "./_fuzz.ts";
import { startServer } from "./_server.ts";
import { type CorpusAnswer, runImageCorpus } from "./corpus_images_run.ts";
import { type ResultTable, writeResult } from "../../bench/_results.ts";

const MiB = 1024 * 1024;

/** Options of {@linkcode fuzzServer}. */
export interface FuzzServerOptions {
  cases: number;
  seed: number;
  concurrency: number;
  /** --max-pixels of the server. */
  maxPixels: string;
  /** --max-body of the server, in bytes. */
  maxBodyBytes: number;
  /** Largest fixture used, in bytes. */
  maxFixtureBytes?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Also send the HTTP hostile corpus, at these sizes (default: not). */
  http?: { batch: number; empties: number; slowClients: number; slowHeaderMs: number };
  /** Serve this model (an ONNX file with its manifest beside it) instead of the tiny one. */
  model?: { path: string; name: string };
}

/** What {@linkcode fuzzServer} saw. */
export interface FuzzServerReport {
  cases: number;
  statuses: Record<string, number>;
  codes: Record<string, number>;
  violationCount: number;
  violations: string[];
  seconds: number;
  /** Server resident memory: after start-up, at the end, and its peak (VmHWM), in MiB. */
  rssStartMiB: number;
  rssEndMiB: number;
  rssPeakMiB: number;
  /** The server answered /healthz after the run. */
  stayedUp: boolean;
  /** Its exit code after SIGTERM. */
  exitCode: number;
  /** Lines it logged at error level (unexpected failures). */
  errorLines: string[];
  /** The HTTP corpus's cases, when sent. */
  http?: HttpCaseResult[];
  /** A normal /predict on the idle server before the HTTP corpus, median of 5, in ms. */
  idleMs?: number;
}

/** Median of 5 normal /predict round trips on the idle server, in ms. */
async function idleLatency(url: string, photo: Uint8Array<ArrayBuffer>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const res = await fetch(`${url}/predict`, { method: "POST", body: photo });
    await res.body?.cancel();
    times.push(performance.now() - t0);
  }
  return Math.round(times.sort((a, b) => a - b)[2]);
}

/**
 * Starts a server on the tiny model (or `options.model`), fuzzes it, stops it.
 *
 * @example
 * ```ts
 * const report = await fuzzServer({ cases: 2000, seed: 1, concurrency: 4, maxPixels: "2mp", maxBodyBytes: 2 * 1024 * 1024 });
 * ```
 */
export async function fuzzServer(options: FuzzServerOptions): Promise<FuzzServerReport> {
  const tiny = await writeTinyModel(64, 48);
  const server = await startServer({
    args: [
      "--model",
      options.model?.path ?? tiny.model,
      "--threads",
      "1",
      "--log-level",
      "warn",
      "--max-pixels",
      options.maxPixels,
      "--max-body",
      String(options.maxBodyBytes),
    ],
  });
  try {
    const start = await server.memory();
    const corpus = await loadCorpus(options.maxFixtureBytes);
    const report = await runFuzz({
      url: server.url,
      cases: generateCases(corpus, options.cases, options.seed),
      concurrency: options.concurrency,
      maxBodyBytes: options.maxBodyBytes,
      onProgress: async (done) => {
        if (done % 2000 !== 0) return;
        const { rss } = await server.memory();
        options.log?.(`${done} cases, server RSS ${(rss / MiB).toFixed(0)} MiB`);
      },
    });
    const photo = await fixture("camera_gray.jpg");
    const idleMs = options.http && await idleLatency(server.url, photo);
    const http = options.http && await runHttpCorpus({
      url: server.url,
      model: options.model?.name ?? "tiny-user-model",
      photo,
      tinyImage: encodePng({ width: 1, height: 1, channels: 3, data: new Uint8Array(3) }),
      bodyReadMs: 5_000, // the server's default --body-read-timeout
      ...options.http,
    });
    const health = await fetch(`${server.url}/healthz`).then(async (r) => {
      await r.body?.cancel();
      return r.status === 200;
    }, () => false);
    const end = await server.memory();
    const errorLines = server.lines().filter((l) => l.includes('"level":"error"'));
    const exitCode = await server.stop("SIGTERM");
    return {
      ...report,
      rssStartMiB: Math.round(start.rss / MiB),
      rssEndMiB: Math.round(end.rss / MiB),
      rssPeakMiB: Math.round(end.peak / MiB),
      stayedUp: health,
      exitCode,
      errorLines: errorLines.slice(0, 20),
      http: http || undefined,
      idleMs: idleMs || undefined,
    };
  } finally {
    if (server.alive()) await server.stop("SIGKILL");
    await Deno.remove(tiny.dir, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      cases: { type: "string", default: "20000" },
      seed: { type: "string", default: "1" },
      concurrency: { type: "string", default: "4" },
      "max-pixels": { type: "string", default: "40mp" },
      "max-body": { type: "string", default: "10485760" },
      "rss-limit": { type: "string", default: "1024" },
      "no-http": { type: "boolean", default: false },
      images: { type: "boolean", default: false },
      model: { type: "string" },
      write: { type: "boolean", default: false },
    },
  });
  if (values.images) {
    // corpus_images_run.ts: every case a 4xx or 200 within 1 s, RSS growth under 150 MiB.
    const report = await runImageCorpus({ model: values.model });
    console.log(JSON.stringify(report, null, 2));
    if (values.write) console.error(`wrote ${await writeImageResult(report, values.model)}`);
    console.error(report.failures.length ? `FAIL: ${report.failures.join("; ")}` : "OK");
    Deno.exit(report.failures.length ? 1 : 0);
  }
  const rssLimit = Number(values["rss-limit"]);
  const report = await fuzzServer({
    cases: Number(values.cases),
    seed: Number(values.seed),
    concurrency: Number(values.concurrency),
    maxPixels: values["max-pixels"]!,
    maxBodyBytes: Number(values["max-body"]),
    log: (line) => console.error(line),
    model: values.model
      ? {
        path: values.model,
        name: JSON.parse(await Deno.readTextFile(values.model.replace(/\.onnx$/, ".json"))).name,
      }
      : undefined,
    // The hostile report's sizes: 10 MB of 1x1 images, 300,000 empty elements, 32 slow clients.
    http: values["no-http"]
      ? undefined
      : { batch: 136_000, empties: 300_000, slowClients: 32, slowHeaderMs: 10_000 },
  });
  const badHttp = (report.http ?? []).filter((r) =>
    r.normal !== 200 || r.statuses.some((s) => !r.allowed.includes(s))
  );
  console.log(JSON.stringify(report, null, 2));
  if (values.write && report.http) {
    console.error(`wrote ${await writeHttpResult(report, values.model, Number(values.cases))}`);
  }
  const failures = [
    report.violationCount > 0 && `${report.violationCount} broken rules`,
    !report.stayedUp && "the server went down",
    report.exitCode !== 0 && `exit code ${report.exitCode} after SIGTERM`,
    report.errorLines.length > 0 && "error lines in the server log",
    report.rssPeakMiB > rssLimit && `peak RSS ${report.rssPeakMiB} MiB over ${rssLimit} MiB`,
    badHttp.length > 0 && `HTTP corpus cases ${badHttp.map((r) => r.name).join(", ")}`,
  ].filter(Boolean);
  console.error(
    failures.length
      ? `FAIL: ${failures.join("; ")}`
      : `OK: ${report.cases} cases in ${report.seconds} s, statuses ${
        JSON.stringify(report.statuses)
      }, peak RSS ${report.rssPeakMiB} MiB (limit ${rssLimit} MiB)`,
  );
  Deno.exit(failures.length ? 1 : 0);
}

function ratio(ms: number, idle: number): string {
  return `${(ms / idle).toFixed(1)}×`;
}

/** The cases whose normal request took over twice the idle latency, or "none". */
function overTwice(beside: [string, number][], idle: number): string {
  const over = beside.filter(([, ms]) => ms > 2 * idle).map(([name, ms]) =>
    `${name} (${ratio(ms, idle)})`
  );
  return over.length ? over.join(", ") : "none";
}

function modelLabel(model?: string): string {
  return model ?? "the tiny test model";
}

/** The image corpus's run as bench/results/hostile-images-<date>.json (BENCHMARKS.md). */
function writeImageResult(
  report: Awaited<ReturnType<typeof runImageCorpus>>,
  model?: string,
): Promise<string> {
  const { answers, idleMs, rssIdleMiB, rssPeakMiB, failures } = report;
  const table: ResultTable = {
    caption: `Each case POSTed to /predict with a normal photo beside it (idle ${idleMs} ms)`,
    columns: ["case", "bytes", "answer", "time", "photo beside it", "vs idle"],
    rows: answers.map((a: CorpusAnswer) => [
      a.case,
      a.bytes,
      a.code ? `${a.status} ${a.code}` : String(a.status),
      `${a.ms} ms`,
      `${a.besideMs} ms`,
      ratio(a.besideMs, idleMs),
    ]),
  };
  return writeResult({
    bench: "hostile-images",
    title: "Hostile input: the image corpus",
    command: `deno task fuzz --images${model ? ` --model ${model}` : ""} --write`,
    notes: [
      `The full-size hostile image corpus (tests/hardening/corpus_images.ts) against a server on ${
        modelLabel(model)
      } with default flags. Goals (issue [hostile]): every case a 4xx or 200 within 1 s, the photo ` +
      "beside it within 2× its idle latency, server RSS at most 150 MB over idle.",
      `Server RSS ${rssIdleMiB} MiB idle, ${rssPeakMiB} MiB peak. ${
        failures.length ? `Missed (with 100 ms of noise allowed): ${failures.join("; ")}.` : ""
      } Photo beside a case over 2× idle: ${
        overTwice(answers.map((a) => [a.case, a.besideMs]), idleMs)
      }.`,
    ],
    tables: [table],
  });
}

/** The HTTP corpus's run as bench/results/hostile-http-<date>.json (BENCHMARKS.md). */
function writeHttpResult(report: FuzzServerReport, model: string | undefined, cases: number) {
  const idle = report.idleMs ?? NaN;
  const table: ResultTable = {
    caption: `Each case sent with a normal /predict beside it (idle ${idle} ms, median of 5)`,
    columns: ["case", "answers", "case took", "/predict beside it", "vs idle"],
    rows: (report.http ?? []).map((r) => {
      const counts = new Map<string, number>();
      for (const s of r.statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
      const answers = [...counts].map(([s, n]) => n > 1 ? `${n}× ${s}` : s).join(", ");
      return [r.name, answers, `${r.ms} ms`, `${r.normalMs} ms`, ratio(r.normalMs, idle)];
    }),
  };

  return writeResult({
    bench: "hostile-http",
    title: "Hostile input: the HTTP corpus",
    command: `deno task fuzz --cases ${cases}${model ? ` --model ${model}` : ""} --write`,
    notes: [
      `The HTTP hostile corpus (tests/hardening/_http_corpus.ts) at full size: 136,000 1×1 images ` +
      "in one BYTES batch (10 MB), 300,000 empty elements, 32 stalled or trickled bodies, 32 " +
      `slow-header clients, against a server on ${modelLabel(model)} with one inference thread.`,
      `Goal (issue [hostile]): a normal /predict beside each case within 2× its idle latency; ` +
      `over it: ${overTwice((report.http ?? []).map((r) => [r.name, r.normalMs]), idle)}. ` +
      `Server RSS ${report.rssStartMiB} MiB at start, ` +
      `${report.rssPeakMiB} MiB peak. Slow-header clients stay connected: Deno.serve has no ` +
      "header timeout, a proxy in front must cut them (docs/security.md).",
    ],
    tables: [table],
  });
}
