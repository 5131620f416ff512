/**
 * A QOperator int8 AlexNet (the zoo's bvlcalexnet-12-int8 format) on our int8 kernels
 * (rewritten at load, src/model/qoperator.ts) against onnxruntime-web running the file
 * itself: correctness first, then speed (round-robin in one process), then peak memory
 * (one fresh process per runtime, loading as the server does: the file read into one
 * buffer of its size, `releaseModel`).
 *
 *   deno run -A bench/qoperator_bench.ts [--model models/bvlcalexnet-12-int8.onnx]
 *     [--threads 1] [--rounds 20] [--write /tmp/qoperator-alexnet.onnx]
 *
 * `--qdq models/alexnet-synthetic-int8.onnx` adds a QDQ AlexNet of the same shapes on
 * our kernels to the timing (what the rewrite's identity layers cost).
 *
 * Without `--model`, a QOperator AlexNet of the zoo's structure with random weights is
 * built (tests/model/_qoperator_models.ts, ~30 s); `--write` keeps it for edge:sim.
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-web";
import { createWasmBackend } from "../src/runtime/mod.ts";
import type { Backend } from "../src/runtime/backend.ts";
import { buildQOperatorAlexNet } from "../tests/model/_qoperator_models.ts";
import { mulberry32 } from "../src/graph/weights.ts";
import { rewriteQOperator } from "../src/graph/qoperator.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string" },
    threads: { type: "string", default: "1" },
    rounds: { type: "string", default: "20" },
    write: { type: "string" },
    qdq: { type: "string" },
    child: { type: "string" },
  },
});
const threads = Number(values.threads);
const io = { inputName: "data_0", outputName: "softmaxout_1" };
const dims = [1, 3, 224, 224];
const MB = 1024 * 1024;

/** Image-like inputs: values in [-128, 128), as the zoo's mean-subtracted pixels. */
function input(seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: 3 * 224 * 224 }, () => 256 * r() - 128);
}

function status(key: string): number {
  const text = Deno.readTextFileSync("/proc/self/status");
  return Number(new RegExp(`${key}:\\s+(\\d+)`).exec(text)![1]) * 1024;
}

/** Reads a file into one buffer of its size (Deno.readFile peaks at twice the file). */
async function readExact(path: string): Promise<Uint8Array> {
  using file = await Deno.open(path);
  const bytes = new Uint8Array((await file.stat()).size);
  for (let at = 0; at < bytes.length;) at += (await file.read(bytes.subarray(at))) ?? bytes.length;
  return bytes;
}

if (values.child) {
  // One runtime in a fresh process: peak RSS while loading and after 5 runs.
  const base = status("VmRSS");
  const bytes = await readExact(values.model!);
  const backend = await createWasmBackend(bytes, {
    ...io,
    eagerThreads: true,
    threads,
    int8: values.child === "ours" ? "custom" : "ort",
    releaseModel: true,
  });
  const loaded = status("VmHWM");
  const x = input(1);
  await backend.run(x, dims);
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) await backend.run(x, dims);
  const ms = (performance.now() - t0) / 5; // after one warm-up run
  console.log(JSON.stringify({
    runtime: values.child,
    kernels: backend.kernels.int8,
    baseMB: base / MB,
    peakLoadMB: loaded / MB,
    peakMB: status("VmHWM") / MB,
    rssMB: status("VmRSS") / MB,
    ms,
  }));
  await backend.release();
  Deno.exit(0);
}

let modelPath = values.model;
if (!modelPath) {
  const t0 = performance.now();
  const m = await buildQOperatorAlexNet({ calibration: 2 });
  modelPath = values.write ?? await Deno.makeTempFile({ suffix: ".onnx" });
  await Deno.writeFile(modelPath, m.bytes);
  console.log(
    `Built a QOperator AlexNet (random weights, zoo structure) in ${
      ((performance.now() - t0) / 1000).toFixed(0)
    } s: ${modelPath}, ${(m.bytes.length / MB).toFixed(1)} MB`,
  );
}

ort.env.wasm.numThreads = threads;
const logs: string[] = [];
const ours = await createWasmBackend(await readExact(modelPath), {
  ...io,
  eagerThreads: true,
  threads,
  int8: "custom",
  log: (l) => logs.push(l),
});
const theirs = await createWasmBackend(await readExact(modelPath), { ...io, threads, int8: "ort" });
// Every rounding onnxruntime does kept (`exact`: identity layers, 34 MB more).
const exact = await createWasmBackend(
  rewriteQOperator(await readExact(modelPath), { exact: true }).bytes,
  { ...io, threads, int8: "custom", eagerThreads: true },
);
console.log(logs.join("\n"));
console.log(`ours: int8 kernels ${ours.kernels.int8}; onnxruntime-web: ${theirs.kernels.int8}`);

// Correctness first: the same top-5 and a small max |diff| on every input.
const top5 = (p: Float32Array) => Array.from(p.keys()).sort((i, j) => p[j] - p[i]).slice(0, 5);
let worst = 0, sameTop1 = 0, sameTop5 = 0, nearTies = 0, worstExact = 0, top5Exact = 0;
const checks = 10;
for (let s = 0; s < checks; s++) {
  const x = input(100 + s);
  const [a, b] = [(await ours.run(x, dims)).data, (await theirs.run(x, dims)).data];
  const c = (await exact.run(x, dims)).data;
  for (let i = 0; i < c.length; i++) worstExact = Math.max(worstExact, Math.abs(c[i] - b[i]));
  if (top5(c).every((v, i) => v === top5(b)[i])) top5Exact++;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  const [ta, tb] = [top5(a), top5(b)];
  if (ta[0] === tb[0]) sameTop1++;
  else {
    // A random-weight AlexNet has near-ties; ours must still be among the reference's top 3.
    const gap = b[tb[0]] - b[ta[0]];
    console.log(`input ${100 + s}: top-1 ${ta[0]} vs ${tb[0]} (reference gap ${gap.toFixed(4)})`);
    if (tb.slice(0, 3).includes(ta[0])) nearTies++;
  }
  if (ta.every((v, i) => v === tb[i])) sameTop5++;
}
console.log(
  `correctness on ${checks} inputs: top-1 equal ${sameTop1}/${checks} (near-ties ${nearTies}), ` +
    `top-5 equal (in order) ` +
    `${sameTop5}/${checks}, max |diff| of probabilities ${worst.toExponential(2)}`,
);
console.log(
  `with every rounding kept (exact): top-5 equal ${top5Exact}/${checks}, ` +
    `max |diff| ${worstExact.toExponential(2)}`,
);
if (sameTop1 + nearTies < checks || worst > 0.05) {
  console.error("ours is not onnxruntime's answer within rounding: not timing");
  Deno.exit(1);
}

// Speed: round-robin, 3 warm-up rounds, medians.
const rounds = Number(values.rounds);
const runners: [string, Backend][] = [
  ["ours", ours],
  ["onnxruntime-web", theirs],
  ["ours-exact", exact],
];
if (values.qdq) {
  const qdq = await createWasmBackend(await readExact(values.qdq), {
    ...io,
    threads,
    eagerThreads: true,
  });
  runners.push(["ours-qdq", qdq]);
}
const times = new Map<string, number[]>(runners.map(([n]) => [n, []]));
const x = input(1);
for (let r = 0; r < rounds + 3; r++) {
  for (const [name, b] of runners) {
    const t0 = performance.now();
    await b.run(x, dims);
    if (r >= 3) times.get(name)!.push(performance.now() - t0);
  }
}
const median = (v: number[]) => v.sort((a, b) => a - b)[v.length >> 1];
const [mo, mt] = [median(times.get("ours")!), median(times.get("onnxruntime-web")!)];
console.log(`\n${threads} thread(s), ${rounds} rounds, median ms (img/s):`);
console.log(`| runtime | ms | img/s | vs onnxruntime-web |`);
console.log(`| --- | --- | --- | --- |`);
console.log(
  `| ours (rewritten) | ${mo.toFixed(1)} | ${(1000 / mo).toFixed(1)} | ${(mo / mt).toFixed(2)} |`,
);
console.log(
  `| onnxruntime-web (QOperator) | ${mt.toFixed(1)} | ${(1000 / mt).toFixed(1)} | 1.00 |`,
);
const me = median(times.get("ours-exact")!);
console.log(
  `| ours, exact (every rounding kept) | ${me.toFixed(1)} | ${(1000 / me).toFixed(1)} | ${
    (me / mt).toFixed(2)
  } |`,
);
if (values.qdq) {
  const mq = median(times.get("ours-qdq")!);
  console.log(
    `| ours, QDQ file of the same shapes | ${mq.toFixed(1)} | ${(1000 / mq).toFixed(1)} | ${
      (mq / mt).toFixed(2)
    } |`,
  );
}
await Promise.all(runners.map(([, b]) => b.release()));

// Memory: a fresh process per runtime.
console.log(`\nPeak RSS, fresh process per runtime (${threads} thread(s)):`);
for (const runtime of ["ours", "ort"]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      import.meta.filename!,
      "--child",
      runtime,
      "--model",
      modelPath,
      "--threads",
      String(threads),
    ],
    stderr: "inherit",
  }).output();
  console.log(new TextDecoder().decode(out.stdout).trim());
}
Deno.exit(0);
