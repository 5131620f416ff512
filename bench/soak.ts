/**
 * `deno task soak`: the real server in its own process on loopback, driven at
 * twice its capacity for a bounded time. Checks first that one request is
 * classified, then measures capacity (closed loop), warms up, and offers
 * `--factor` x capacity as an open loop (arrivals do not wait for answers).
 *
 * Passes when every request is answered 200 or 503 (`overloaded`/`timeout`
 * with Retry-After), none fails at the socket, and the server's resident
 * memory at the end is within 5% of what it was after the warm-up (means
 * over the last 5 s of each). Prints a JSON report; exits 1 on failure.
 *
 * ```sh
 * deno task soak                                   # synthetic AlexNet, 60 s at 2x
 * deno task soak --model tiny --duration 30 --factor 3
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { writeTinyModel } from "../tests/_helpers.ts";
import { startServer } from "../tests/hardening/_server.ts";

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const percentile = (xs: number[], p: number) => {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

const { values } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "synthetic" },
    duration: { type: "string", default: "60" },
    warmup: { type: "string", default: "15" },
    factor: { type: "string", default: "2" },
    "max-queue": { type: "string", default: "32" },
    image: { type: "string", default: "tests/fixtures/chelsea.jpg" },
  },
});
const duration = Number(values.duration) * 1000;
const warmup = Number(values.warmup) * 1000;
const factor = Number(values.factor);

const tiny = values.model === "tiny" ? await writeTinyModel(64, 48) : undefined;
const server = await startServer({
  args: [
    "--model",
    tiny?.model ?? values.model!,
    "--max-queue",
    values["max-queue"]!,
    "--log-level",
    "error",
  ],
});
const image = await Deno.readFile(values.image!);
const send = async () => {
  const start = performance.now();
  try {
    const res = await fetch(`${server.url}/predict`, {
      method: "POST",
      headers: { "content-type": "image/jpeg" },
      body: image,
    });
    const body = await res.json().catch(() => ({}));
    const code = body?.error?.code as string | undefined;
    const retry = res.headers.get("retry-after");
    return { status: res.status, code, retry, ms: performance.now() - start, body };
  } catch (e) {
    return { status: 0, code: `socket: ${(e as Error).message}`, retry: null, ms: 0, body: {} };
  }
};

// 1. Correctness first.
const first = await send();
if (first.status !== 200 || !Array.isArray(first.body.predictions)) {
  console.error(`FAIL: the first request answered ${first.status}: ${JSON.stringify(first.body)}`);
  await server.stop("SIGKILL");
  Deno.exit(1);
}

// 2. Capacity: a closed loop of 4 clients for 8 s (2 s of it discarded).
const capacity = await (async () => {
  let done = 0;
  let counting = false;
  const end = performance.now() + 8000;
  setTimeout(() => (counting = true), 2000);
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (performance.now() < end) {
      const r = await send();
      if (r.status === 200 && counting) done++;
    }
  }));
  return done / 6;
})();
const rate = capacity * factor;

// 3 and 4. Open loop at `rate`: warm-up, then the soak; memory sampled every second.
const statuses: Record<string, number> = {};
const codes: Record<string, number> = {};
const latencies: Record<string, number[]> = { ok: [], refused: [] };
const problems: string[] = [];
const rss: { t: number; rss: number; phase: "warmup" | "soak" }[] = [];
let phase: "warmup" | "soak" = "warmup";
const inflight = new Set<Promise<void>>();
const started = performance.now();
const sampler = setInterval(async () => {
  const m = await server.memory();
  rss.push({ t: Math.round((performance.now() - started) / 1000), rss: m.rss, phase });
}, 1000);
let sent = 0;
const stopAt = started + warmup + duration;
for (let i = 0;; i++) {
  const at = started + i * 1000 / rate;
  if (at >= stopAt) break;
  await sleep(at - performance.now());
  if (phase === "warmup" && performance.now() >= started + warmup) phase = "soak";
  const counted = phase === "soak";
  if (counted) sent++;
  const p = send().then((r) => {
    if (!counted) return;
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    if (r.code) codes[r.code] = (codes[r.code] ?? 0) + 1;
    if (r.status === 200) latencies.ok.push(r.ms);
    else if (r.status === 503 && (r.code === "overloaded" || r.code === "timeout") && r.retry) {
      latencies.refused.push(r.ms);
    } else if (problems.length < 20) problems.push(`${r.status} ${r.code ?? ""}`);
  }).finally(() => inflight.delete(p));
  inflight.add(p);
}
await Promise.all(inflight);
const elapsed = (performance.now() - (started + warmup)) / 1000; // until the last answer
clearInterval(sampler);
const peak = (await server.memory()).peak;
const exitCode = await server.stop("SIGTERM");
if (tiny) await Deno.remove(tiny.dir, { recursive: true });

const lastSeconds = (which: "warmup" | "soak") => rss.filter((s) => s.phase === which).slice(-5);
const baseline = mean(lastSeconds("warmup").map((s) => s.rss));
const final = mean(lastSeconds("soak").map((s) => s.rss));
const growth = (final - baseline) / baseline;
const ok = statuses["200"] ?? 0;
const report = {
  model: values.model,
  date: new Date().toISOString().slice(0, 10),
  capacity_rps: Math.round(capacity * 10) / 10,
  offered_rps: Math.round(rate * 10) / 10,
  seconds: duration / 1000,
  requests: sent,
  statuses,
  codes,
  served_rps: Math.round(ok / elapsed * 10) / 10,
  drain_seconds: Math.round((elapsed - duration / 1000) * 10) / 10,
  latency_ms: {
    p50_200: Math.round(percentile(latencies.ok, 0.5)),
    p99_200: Math.round(percentile(latencies.ok, 0.99)),
    p50_503: Math.round(percentile(latencies.refused, 0.5)),
    p99_503: Math.round(percentile(latencies.refused, 0.99)),
  },
  rss_mib: {
    after_warmup: Math.round(baseline / MiB),
    end: Math.round(final / MiB),
    peak: Math.round(peak / MiB),
    growth_percent: Math.round(growth * 1000) / 10,
  },
  rss_samples_mib: rss.map((s) => Math.round(s.rss / MiB)),
  exit_code_after_sigterm: exitCode,
  problems,
};
console.log(JSON.stringify(report, null, 2));
const failures = [
  problems.length > 0 && `answers other than 200/503: ${problems.join(", ")}`,
  !(growth < 0.05) && `RSS grew ${(growth * 100).toFixed(1)}% after the warm-up`,
  (statuses["503"] ?? 0) === 0 && "no 503 at 2x capacity: the queue bound was never reached",
  exitCode !== 0 && `exit code ${exitCode} after SIGTERM`,
].filter(Boolean);
console.error(failures.length ? `FAIL: ${failures.join("; ")}` : "OK");
Deno.exit(failures.length ? 1 : 0);
