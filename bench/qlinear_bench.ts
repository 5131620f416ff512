/**
 * int8 layers: our SIMD128 kernels (src/runtime/kernels, single-threaded) against
 * onnxruntime-web's fp32 Gemm / Conv in one-node sessions, at AlexNet's shapes,
 * batch 1: fc6 (9216 -> 4096), fc7 (4096 -> 4096), fc8 (4096 -> 1000), and conv1-5
 * on a 224x224 input.
 *
 * The float weights are random, quantized per output row by the project's quantizer
 * (`quantizePerChannel`); onnxruntime-web gets the dequantized float weights, so
 * both compute the same layer and its cost is that of the fp32 model. onnxruntime-web
 * reads `env.wasm.numThreads` once per process, so run once per thread count:
 *
 * ```sh
 * QLINEAR_BENCH_THREADS=1 deno bench --allow-read --allow-env bench/qlinear_bench.ts
 * QLINEAR_BENCH_THREADS=2 deno bench --allow-read --allow-env bench/qlinear_bench.ts
 * ```
 *
 * `QLINEAR_BENCH_CASES=fc` or `=conv` narrows the run. Before anything is timed,
 * ours is checked bit for bit against the TypeScript reference and within 1e-5 (of
 * max |y|) against onnxruntime-web fed the dequantized input; a mismatch fails the
 * run. The summary printed at the end gives medians, the weight bytes read per
 * second (fc) or multiply-adds per second (conv), and ours / theirs.
 *
 * @module
 */
import * as ort from "onnxruntime-web";
import { quantizePerChannel } from "../src/graph/quantize.ts";
import {
  createQConvKernel,
  createQLinearKernel,
  qconvReference,
  type QConvWeights,
  qlinearReference,
  quantizeLinearReference,
} from "../src/runtime/kernels/mod.ts";
import {
  createOrtConv,
  createOrtGemm,
  mismatches,
  type OrtNode,
  randomFloats,
} from "../tests/runtime/kernels/_q_helpers.ts";

const threads = Number(Deno.env.get("QLINEAR_BENCH_THREADS") ?? "1");
if (!Number.isInteger(threads) || threads < 1) {
  throw new RangeError(
    `Cannot run the int8 bench: QLINEAR_BENCH_THREADS must be >= 1, got ${threads}`,
  );
}
const only = Deno.env.get("QLINEAR_BENCH_CASES") ?? "all";
// Must happen before the first session exists (see the module comment).
ort.env.wasm.numThreads = threads;
ort.env.logLevel = "error";

const ITERATIONS = 100;
const WARMUP = 20;
/** Input quantization: a post-ReLU range of [0, 6). */
const X_SCALE = 6 / 255;
const X_ZERO = 0;

interface Row {
  label: string;
  ours: string;
  theirs: string;
  /** Weight bytes read per call by ours (int8) and theirs (fp32); 0 for conv. */
  bytes: number;
  /** Multiply-adds per call. */
  macs: number;
}
const rows: Row[] = [];
const samples = new Map<string, number[]>();

/** Times each call itself (Deno's table has no median). */
function timed(name: string, fn: () => unknown): () => Promise<void> {
  const list: number[] = [];
  samples.set(name, list);
  return async () => {
    const t0 = performance.now();
    await fn();
    list.push(performance.now() - t0);
  };
}

/** Fails the run unless `ours` is within 1e-5 of max |theirs| everywhere. */
function checkClose(label: string, ours: Float32Array, theirs: ArrayLike<number>): void {
  let scale = 0, diff = 0;
  for (let i = 0; i < ours.length; i++) {
    scale = Math.max(scale, Math.abs(theirs[i]));
    diff = Math.max(diff, Math.abs(ours[i] - theirs[i]));
  }
  if (!(diff <= 1e-5 * scale)) {
    throw new Error(
      `int8 bench ${label}: ours vs onnxruntime-web differ by ${diff} (max |y| ${scale})`,
    );
  }
  console.log(
    `${label}: exact vs reference; max |ours - onnxruntime-web| ${diff.toExponential(2)} (max |y| ${
      scale.toFixed(2)
    })`,
  );
}

/** x quantized and dequantized: what onnxruntime-web gets, so both see the same input. */
function dequantizedInput(x: Float32Array): Float32Array {
  const q = quantizeLinearReference(x, X_SCALE, X_ZERO);
  return Float32Array.from(q, (v) => (v - X_ZERO) * Math.fround(X_SCALE));
}

function register(row: Row, ours: () => unknown, theirs: () => unknown): void {
  rows.push(row);
  const common = { group: row.label, n: ITERATIONS, warmup: WARMUP };
  Deno.bench({ ...common, name: row.ours, baseline: true, fn: timed(row.ours, ours) });
  Deno.bench({ ...common, name: row.theirs, fn: timed(row.theirs, theirs) });
}

const sessions: OrtNode[] = [];

// fc6-fc8: Gemm with transB, W: [M, K]; ReLU after fc6 and fc7.
const FC: [string, number, number, boolean][] = [
  ["fc6", 4096, 9216, true],
  ["fc7", 4096, 4096, true],
  ["fc8", 1000, 4096, false],
];
for (const [name, m, k, relu] of only === "conv" ? [] : FC) {
  const { q, scales } = quantizePerChannel(randomFloats(m * k, m + k, -0.05, 0.05), m, k);
  const bias = randomFloats(m, m, -0.1, 0.1);
  const layer = { weights: q, m, k, weightScales: scales, bias };
  const kernel = await createQLinearKernel(layer);
  const wd = Float32Array.from(q, (v, i) => v * scales[Math.floor(i / k)]);
  const theirs = await createOrtGemm(wd, m, k, bias);
  sessions.push(theirs);
  const x = randomFloats(k, k, -1, 6).map((v) => Math.max(0, v)); // x: [1, K], post-ReLU
  const xd = dequantizedInput(x);
  const out = new Float32Array(m);

  const ours = kernel.run(x, 1, X_SCALE, X_ZERO, false, out);
  const bad = mismatches(ours, qlinearReference(layer, x, 1, X_SCALE, X_ZERO, false));
  if (bad) throw new Error(`int8 bench ${name}: ours vs reference: ${bad}`);
  checkClose(name, ours, await theirs.run(xd, [1, k]));

  register(
    {
      label: `${name} ${k}->${m}`,
      ours: `ours int8 ${name}`,
      theirs: `onnxruntime-web fp32 ${threads}T ${name}`,
      bytes: m * k,
      macs: m * k,
    },
    () => kernel.run(x, 1, X_SCALE, X_ZERO, relu, out),
    () => theirs.run(xd, [1, k]),
  );
}

// conv1-conv5 of bvlc_alexnet on 224x224, each followed by ReLU.
type Attrs = Required<Pick<QConvWeights, "group" | "strides" | "pads">>;
const CONV: [string, QConvWeights["shape"], Attrs, [number, number, number, number]][] = [
  ["conv1", [96, 3, 11, 11], { group: 1, strides: [4, 4], pads: [0, 0, 0, 0] }, [1, 3, 224, 224]],
  ["conv2", [256, 48, 5, 5], { group: 2, strides: [1, 1], pads: [2, 2, 2, 2] }, [1, 96, 27, 27]],
  ["conv3", [384, 256, 3, 3], { group: 1, strides: [1, 1], pads: [1, 1, 1, 1] }, [1, 256, 13, 13]],
  ["conv4", [384, 192, 3, 3], { group: 2, strides: [1, 1], pads: [1, 1, 1, 1] }, [1, 384, 13, 13]],
  ["conv5", [256, 192, 3, 3], { group: 2, strides: [1, 1], pads: [1, 1, 1, 1] }, [1, 384, 13, 13]],
];
for (const [name, shape, attrs, dims] of only === "fc" ? [] : CONV) {
  const [m] = shape;
  const per = shape[1] * shape[2] * shape[3];
  const { q, scales } = quantizePerChannel(randomFloats(m * per, m, -0.1, 0.1), m, per);
  const bias = randomFloats(m, m + 1, -0.1, 0.1);
  const layer: QConvWeights = { weights: q, shape, weightScales: scales, bias, ...attrs };
  const kernel = await createQConvKernel(layer);
  const wd = Float32Array.from(q, (v, i) => v * scales[Math.floor(i / per)]);
  const theirs = await createOrtConv(wd, shape, bias, { ...attrs, dilations: [1, 1] });
  sessions.push(theirs);
  const x = randomFloats(dims[1] * dims[2] * dims[3], m, -1, 6).map((v) => Math.max(0, v));
  const xd = dequantizedInput(x);
  const [, , oh, ow] = kernel.outputDims(dims);
  const out = new Float32Array(m * oh * ow);

  const ours = kernel.run(x, dims, X_SCALE, X_ZERO, false, out);
  const bad = mismatches(ours, qconvReference(layer, x, dims, X_SCALE, X_ZERO, false));
  if (bad) throw new Error(`int8 bench ${name}: ours vs reference: ${bad}`);
  checkClose(name, ours, await theirs.run(xd, [...dims]));

  register(
    {
      label: `${name} [${shape}]/${attrs.group} on ${dims[2]}x${dims[3]}`,
      ours: `ours int8 ${name}`,
      theirs: `onnxruntime-web fp32 ${threads}T ${name}`,
      bytes: 0,
      macs: m * oh * ow * per,
    },
    () => kernel.run(x, dims, X_SCALE, X_ZERO, true, out),
    () => theirs.run(xd, [...dims]),
  );
}

function median(list: number[]): number {
  const s = list.slice(-ITERATIONS).sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

globalThis.addEventListener("unload", () => {
  console.log(
    `\nint8 medians over ${ITERATIONS} iterations, batch 1; ours single-threaded, ` +
      `onnxruntime-web numThreads = ${ort.env.wasm.numThreads} (asked ${threads}):`,
  );
  let sumOurs = 0, sumTheirs = 0;
  for (const { label, ours, theirs, bytes, macs } of rows) {
    const a = median(samples.get(ours) ?? []);
    const b = median(samples.get(theirs) ?? []);
    sumOurs += a;
    sumTheirs += b;
    const rate = (ms: number, scale: number) =>
      bytes > 0
        ? `${(bytes * scale / ms / 1e6).toFixed(1)} GB/s weights`
        : `${(macs / ms / 1e6).toFixed(1)} GMAC/s`;
    console.log(
      `  ${label}: ours ${a.toFixed(3)} ms (${rate(a, 1)}), onnxruntime-web ${b.toFixed(3)} ms ` +
        `(${rate(b, 4)}), ours / theirs = ${(a / b).toFixed(3)}`,
    );
  }
  console.log(
    `  all ${rows.length} layers: ours ${sumOurs.toFixed(2)} ms, onnxruntime-web ` +
      `${sumTheirs.toFixed(2)} ms, ours / theirs = ${(sumOurs / sumTheirs).toFixed(3)}`,
  );
  for (const s of sessions) void s.release();
});
