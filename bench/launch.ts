/**
 * Cold start and memory of each way the server is launched: spawn -> first 200 on
 * `POST /predict`, RSS at that moment, and peak RSS once it has answered 20 more requests
 * and its kernels' helper threads (which may join after the first answer) have started, for
 * the default launch, the single-thread and main-thread variants, and each edge profile.
 * Runs with `deno task start`'s permissions on the synthetic int8 model (made by our
 * quantizer when missing), several rounds interleaved, and prints a loud line when the
 * default launch misses its goals (issue [lean]: 500 ms, 200 MB; profiles 180 MB).
 *
 *   deno task bench:launch [--rounds 3] [--no-write]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { freePort, processMemory, readLines } from "../tests/_process.ts";
import { median, type ResultTable, writeResult } from "./_results.ts";

const ROOT = new URL("..", import.meta.url);
const INT8 = "models/alexnet-synthetic-int8.onnx";
/** The permissions of `deno task start` (deno.json). */
const START_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
];
const GOALS = { coldMs: 500, peakMb: 200, profilePeakMb: 180 };
/**
 * The server's line once its helper threads have started (or failed to), deferred
 * (src/runtime/wasm.ts) or given from the start (src/classify/_worker.ts).
 */
const HELPERS_SETTLED = /Our kernels (now run on \d+ threads|stay on 1 thread|run on \d+ threads)/;
/** How long to wait for that line: launches whose threads start with them never write it. */
const SETTLE_MS = 5000;

/** One launch: a label and the flags it adds to `deno task start`. */
const LAUNCHES: { label: string; args: string[]; profile?: boolean; isDefault?: boolean }[] = [
  { label: "default (2 threads)", args: ["--threads", "2"], isDefault: true },
  { label: "--backend wasm", args: ["--threads", "2", "--backend", "wasm"] },
  {
    label: "--backend wasm --inference-thread main",
    args: ["--threads", "2", "--backend", "wasm", "--inference-thread", "main"],
  },
  { label: "--backend wasm --threads 1", args: ["--threads", "1", "--backend", "wasm"] },
  ...["deno-deploy", "netlify", "supabase"].map((p) => ({
    label: `--edge-profile ${p}`,
    args: ["--edge-profile", p],
    profile: true,
  })),
];

interface Sample {
  coldMs: number;
  readyMb: number;
  peakMb: number;
}

async function ensureInt8(): Promise<void> {
  if (await Deno.stat(new URL(INT8, ROOT)).then(() => true, () => false)) return;
  console.error(`${INT8} is missing: making it with deno task quantize (once, about a minute)`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "quantize"],
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("Cannot make the int8 model: deno task quantize failed");
}

async function predictTimes(port: number, photo: Uint8Array<ArrayBuffer>, n: number) {
  for (let i = 0; i < n; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/predict`, { method: "POST", body: photo });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`/predict answered ${res.status}`);
  }
}

/** Resolves once a line matches `pattern`, or after `ms`. */
async function lineOrTimeout(lines: string[], pattern: RegExp, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline && !lines.some((l) => pattern.test(l))) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Spawns the server and polls /predict every 20 ms until the first 200; then 20 requests,
 * the helper threads' start (or SETTLE_MS), 5 more requests, and the peak.
 */
async function launchOnce(args: string[], photo: Uint8Array<ArrayBuffer>): Promise<Sample> {
  const port = freePort();
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...START_PERMISSIONS,
      "main.ts",
      ...["--port", String(port), "--host", "127.0.0.1", "--offline", "--log-level", "info"],
      ...["--model", INT8, ...args],
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines: string[] = [];
  const reading = readLines(child.stdout, lines, 2000);
  try {
    const coldMs = await firstAnswer(port, photo, t0);
    const ready = await processMemory(child.pid);
    await predictTimes(port, photo, 20);
    // The peak counts the helpers' start: until then a second set of weights is being packed.
    await lineOrTimeout(lines, HELPERS_SETTLED, SETTLE_MS);
    await predictTimes(port, photo, 5);
    const after = await processMemory(child.pid);
    return { coldMs, readyMb: ready.rss / 2 ** 20, peakMb: after.peak / 2 ** 20 };
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await reading;
  }
}

async function firstAnswer(
  port: number,
  photo: Uint8Array<ArrayBuffer>,
  t0: number,
): Promise<number> {
  const deadline = t0 + 120_000;
  while (performance.now() < deadline) {
    const res = await fetch(`http://127.0.0.1:${port}/predict`, { method: "POST", body: photo })
      .catch(() => undefined);
    await res?.body?.cancel();
    if (res?.ok) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("The server gave no 200 on /predict within 120 s");
}

function goalLines(rows: { label: string; s: Sample; profile?: boolean; isDefault?: boolean }[]) {
  const misses: string[] = [];
  for (const { label, s, profile, isDefault } of rows) {
    if (isDefault && s.coldMs > GOALS.coldMs) {
      misses.push(`${label}: first 200 after ${s.coldMs.toFixed(0)} ms (goal ${GOALS.coldMs})`);
    }
    if (isDefault && s.peakMb > GOALS.peakMb) {
      misses.push(`${label}: peak ${s.peakMb.toFixed(0)} MB (goal ${GOALS.peakMb})`);
    }
    if (profile && s.peakMb > GOALS.profilePeakMb) {
      misses.push(`${label}: peak ${s.peakMb.toFixed(0)} MB (goal ${GOALS.profilePeakMb})`);
    }
  }
  return misses;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { rounds: { type: "string", default: "3" }, "no-write": { type: "boolean" } },
  });
  const rounds = Number(values.rounds);
  await ensureInt8();
  const photo = await Deno.readFile(new URL("tests/fixtures/chelsea.jpg", ROOT));
  const samples = LAUNCHES.map(() => [] as Sample[]);
  // Interleaved: each round runs every launch once, so drift on a noisy machine spreads evenly.
  for (let r = 0; r < rounds; r++) {
    for (const [i, launch] of LAUNCHES.entries()) {
      samples[i].push(await launchOnce(launch.args, photo));
      console.error(`round ${r + 1}/${rounds}: ${launch.label} done`);
    }
  }
  const rows = LAUNCHES.map((l, i) => ({
    ...l,
    s: {
      coldMs: median(samples[i].map((x) => x.coldMs)),
      readyMb: median(samples[i].map((x) => x.readyMb)),
      peakMb: median(samples[i].map((x) => x.peakMb)),
    },
  }));
  const table: ResultTable = {
    caption: `Median of ${rounds} interleaved rounds, synthetic int8 (58 MB), chelsea.jpg.`,
    columns: ["launch", "spawn -> first 200 on /predict", "RSS at first 200", "peak under load"],
    rows: rows.map(({ label, s }) => [
      label,
      `${s.coldMs.toFixed(0)} ms`,
      `${s.readyMb.toFixed(0)} MB`,
      `${s.peakMb.toFixed(0)} MB`,
    ]),
  };
  console.log(`| ${table.columns.join(" | ")} |\n|${table.columns.map(() => "---").join("|")}|`);
  for (const row of table.rows) console.log(`| ${row.join(" | ")} |`);
  const misses = goalLines(rows);
  for (const m of misses) console.log(`!!! GOAL MISSED: ${m}`);
  if (!misses.length) console.log("All launch goals met.");
  if (!values["no-write"]) {
    const path = await writeResult({
      bench: "launch",
      title: "Cold start and memory by launch",
      command: `deno task bench:launch --rounds ${rounds}`,
      notes: [
        "Process spawn (`deno run` with `deno task start`'s permissions) to the first 200 on " +
        "`POST /predict` (polled every 20 ms), the resident set at that moment, and the peak " +
        "resident set (VmHWM) after 20 more requests, the kernels' helper threads joining " +
        `(where they start after the first answer; at most ${SETTLE_MS / 1000} s waited) ` +
        "and 5 more requests. The model is already on disk.",
        `Goals: default launch ${GOALS.coldMs} ms and ${GOALS.peakMb} MB peak; each edge profile ` +
        `${GOALS.profilePeakMb} MB peak. ${
          misses.length ? `Missed: ${misses.join("; ")}.` : "All met in this run."
        }`,
      ],
      tables: [table],
      plots: [
        {
          name: "launch-cold-start",
          title: "Spawn to first /predict answer",
          unit: "ms",
          bars: rows.map(({ label, s }) => ({ label, value: Math.round(s.coldMs) })),
          goal: { label: "goal (default)", value: GOALS.coldMs },
        },
        {
          name: "launch-peak-rss",
          title: "Peak RSS under load (helper threads joined)",
          unit: "MB",
          bars: rows.map(({ label, s }) => ({ label, value: Math.round(s.peakMb) })),
          goal: { label: "goal (default)", value: GOALS.peakMb },
        },
      ],
    });
    console.error(`Wrote ${path}`);
  }
}
