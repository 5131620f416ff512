/**
 * LRN: our SIMD128 kernel (src/runtime/kernels) against onnxruntime-web's built-in
 * LRN in an LRN-only session, on AlexNet's two LRN shapes (batch 1, size 5,
 * alpha 1e-4, beta 0.75, bias 1).
 *
 * onnxruntime-web reads `env.wasm.numThreads` once, when its WebAssembly runtime
 * starts, and the setting is process-wide, so one process measures one thread
 * count. Run it once per count:
 *
 * ```sh
 * LRN_BENCH_THREADS=1 deno bench --allow-read --allow-env bench/lrn_bench.ts
 * LRN_BENCH_THREADS=2 deno bench --allow-read --allow-env bench/lrn_bench.ts
 * ```
 *
 * Before anything is timed, both outputs are checked against the float64 reference
 * (and each other); a mismatch fails the run. Deno's table gives mean and
 * percentiles; the summary printed at the end gives each case's median over the
 * timed iterations, its throughput, and the ratio ours / theirs.
 *
 * @module
 */
import * as ort from "onnxruntime-web";
import { createLrnKernel, type LrnDims, lrnReference } from "../src/runtime/kernels/mod.ts";
import {
  compareToReference,
  createOrtLrn,
  randomTensor,
} from "../tests/runtime/kernels/_lrn_helpers.ts";

const threads = Number(Deno.env.get("LRN_BENCH_THREADS") ?? "1");
if (!Number.isInteger(threads) || threads < 1) {
  throw new RangeError(`Cannot run the LRN bench: LRN_BENCH_THREADS must be >= 1, got ${threads}`);
}
// Must happen before the first session exists (see the module comment).
ort.env.wasm.numThreads = threads;
ort.env.logLevel = "error";

const PARAMS = { size: 5, alpha: 1e-4, beta: 0.75, bias: 1 };
const SHAPES: LrnDims[] = [[1, 96, 54, 54], [1, 256, 27, 27]];
const ITERATIONS = 300;
const WARMUP = 50;

const kernel = await createLrnKernel();
const samples = new Map<string, number[]>();

/** Times each call itself (Deno's table has no median), keeping the last `ITERATIONS`. */
function timed(name: string, fn: () => unknown): () => Promise<void> {
  const list: number[] = [];
  samples.set(name, list);
  return async () => {
    const t0 = performance.now();
    await fn();
    list.push(performance.now() - t0);
  };
}

const summary: { label: string; values: number; ours: string; theirs: string }[] = [];
for (const dims of SHAPES) {
  const label = `${dims[1]}x${dims[2]}x${dims[3]}`;
  const values = dims.reduce((a, b) => a * b, 1);
  // x: [1, C, H, W], ReLU-like: half zeros, the rest spread over [0, 4).
  const x = randomTensor(values, values, -4, 4).map((v) => Math.max(0, v));
  const out = new Float32Array(values);
  const theirs = await createOrtLrn(dims, PARAMS);

  const expected = lrnReference(x, dims, PARAMS, new Float64Array(values));
  const checks = {
    "ours vs reference": compareToReference(kernel.run(x, dims, PARAMS, out), expected, dims),
    "onnxruntime-web vs reference": compareToReference(await theirs.run(x), expected, dims),
    "ours vs onnxruntime-web": compareToReference(out, await theirs.run(x), dims),
  };
  for (const [what, c] of Object.entries(checks)) {
    if (!c.ok) throw new Error(`LRN bench ${label}: ${what} disagree: ${c.report}`);
    console.log(
      `${label} ${what}: max |diff| ${c.maxDiff.toExponential(2)} (max |y| ${c.maxRef.toFixed(3)})`,
    );
  }

  const ours = `ours ${label}`;
  const ortName = `onnxruntime-web ${threads}T ${label}`;
  summary.push({ label, values, ours, theirs: ortName });
  Deno.bench({
    name: ours,
    group: label,
    baseline: true,
    n: ITERATIONS,
    warmup: WARMUP,
    fn: timed(ours, () => kernel.run(x, dims, PARAMS, out)),
  });
  Deno.bench({
    name: ortName,
    group: label,
    n: ITERATIONS,
    warmup: WARMUP,
    fn: timed(ortName, () => theirs.run(x)),
  });
}

function median(list: number[]): number {
  const s = list.slice(-ITERATIONS).sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

globalThis.addEventListener("unload", () => {
  console.log(
    `\nLRN medians over ${ITERATIONS} iterations, onnxruntime-web numThreads = ` +
      `${ort.env.wasm.numThreads} (asked ${threads}):`,
  );
  for (const { label, values, ours, theirs } of summary) {
    const a = median(samples.get(ours) ?? []);
    const b = median(samples.get(theirs) ?? []);
    const rate = (ms: number) => `${(values / ms / 1e3).toFixed(0)} Mvalues/s`;
    console.log(
      `  ${label}: ours ${a.toFixed(3)} ms (${rate(a)}), onnxruntime-web ${b.toFixed(3)} ms ` +
        `(${rate(b)}), ours / theirs = ${(a / b).toFixed(3)}`,
    );
  }
});
