/**
 * Why int8 is slow in onnxruntime-web: the synthetic AlexNet in fp32 and in
 * several int8 formats (QDQ layouts, u8/s8, per-tensor/per-channel, Gemm
 * weight layout, QOperator), calibrated on 20 realistic photos. Every
 * variant is first checked against fp32 (top-1 on three fixtures and on 50
 * other realistic photos; one that differs on the timed photo is not timed),
 * then timed at 1 and 2 threads: one process per engine and thread count
 * (onnxruntime-web's thread count is process-wide), all variants' sessions
 * in it, run round-robin so the load of a shared machine falls on all alike.
 * Reports median latency and throughput (img/s), then session options,
 * onnxruntime-node on the same files, and per-layer times and kernels from
 * onnxruntime's profiler.
 *
 *   deno run -A bench/int8_formats.ts [--runs 20] [--threads 1,2] [--variants a,b]
 *       [--parts variants,options,profile] [--no-node] [--ort-node /tmp/ortnode] [--dir DIR]
 *
 * onnxruntime-node is optional: `npm install --ignore-scripts onnxruntime-node@1.30.0` in
 * /tmp/ortnode (the CPU binary ships in the package). Prints Markdown tables (docs/int8.md).
 *
 * @module
 */
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import * as ortWeb from "onnxruntime-web";
import { decodeImage, preprocess } from "../src/image/mod.ts";
import { decodeModel, onnx } from "../src/graph/onnx.ts";
import { floatValues, quantizeModel, type QuantizeOptions } from "../src/graph/quantize.ts";
import { ensureSyntheticModel, loadModel } from "../src/model/store.ts";
import { wasmEvaluator } from "../src/runtime/evaluate.ts";
import { realisticPhotos } from "../tests/_photos.ts";

// ---------------------------------------------------------------------------
// Child: several sessions at one thread count, timed round-robin so that the
// load of a shared machine falls on all of them alike. Prints `RESULT <json>`
// and, when profiling, `PROFILE <label>` followed by onnxruntime's profile
// events (one JSON object per line).
// ---------------------------------------------------------------------------

/** One session of a child. */
interface ChildModel {
  label: string;
  path: string;
  /** Session options merged over the defaults of src/runtime/wasm.ts. */
  options: Record<string, unknown>;
}

/** What the parent asks a child process to measure. */
interface ChildSpec {
  engine: "web" | "node";
  models: ChildModel[];
  threads: number;
  runs: number;
  /** Raw float32 tensors [1, 3, 224, 224]; the first is the timed one. */
  inputs: string[];
  inputName: string;
  outputName: string;
  profile: boolean;
  ortNode: string;
}

/** What a child measured for one session. */
interface SessionResult {
  createMs: number;
  times: number[];
  /** The output (probabilities) for each input. */
  outputs: number[][];
}

interface Session {
  run(feeds: Record<string, unknown>): Promise<Record<string, { data: unknown }>>;
  endProfiling(): unknown;
}

async function child(spec: ChildSpec): Promise<void> {
  const dims = [1, 3, 224, 224];
  type TensorCtor = new (type: "float32", data: Float32Array, dims: number[]) => unknown;
  let create: (bytes: Uint8Array, options: Record<string, unknown>, i: number) => Promise<Session>;
  let Tensor: TensorCtor;
  const profileDir = spec.profile && spec.engine === "node"
    ? await Deno.makeTempDir({ prefix: "ortnode_profile_" })
    : undefined;
  if (spec.engine === "web") {
    ortWeb.env.wasm.numThreads = spec.threads;
    ortWeb.env.logLevel = "error";
    Tensor = ortWeb.Tensor as unknown as TensorCtor;
    create = async (bytes, options) =>
      await ortWeb.InferenceSession.create(bytes, {
        executionProviders: ["wasm"],
        graphOptimizationLevel: "all",
        enableProfiling: spec.profile,
        ...options,
      }) as unknown as Session;
  } else {
    const ort = createRequire(`file://${spec.ortNode}/`)("onnxruntime-node");
    Tensor = ort.Tensor;
    create = (bytes, options, i) =>
      ort.InferenceSession.create(bytes, {
        intraOpNumThreads: spec.threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: "all",
        ...(profileDir ? { enableProfiling: true, profileFilePrefix: `${profileDir}/${i}_` } : {}),
        // Each onnxruntime-node session has its own intra-op pool; spinning workers of one
        // session would steal the cores from the next one in the round-robin.
        extra: { session: { intra_op: { allow_spinning: "0" } } },
        ...options,
      });
  }
  const feeds = await Promise.all(spec.inputs.map(async (path) => {
    const raw = await Deno.readFile(path);
    return { [spec.inputName]: new Tensor("float32", new Float32Array(raw.buffer), dims) };
  }));
  const sessions: Session[] = [];
  const results: Record<string, SessionResult> = {};
  for (const [i, m] of spec.models.entries()) {
    const t0 = performance.now();
    const session = await create(await Deno.readFile(m.path), m.options, i);
    const createMs = performance.now() - t0;
    const outputs: number[][] = [];
    for (const f of feeds) {
      outputs.push(Array.from((await session.run(f))[spec.outputName].data as Float32Array));
    }
    sessions.push(session);
    results[m.label] = { createMs, times: [], outputs };
  }
  for (let r = 0; r < 3; r++) for (const s of sessions) await s.run(feeds[0]); // warm-up
  for (let r = 0; r < spec.runs; r++) {
    for (let j = 0; j < sessions.length; j++) {
      const i = (j + r) % sessions.length; // rotate the order each round
      const t = performance.now();
      await sessions[i].run(feeds[0]);
      results[spec.models[i].label].times.push(performance.now() - t);
    }
  }
  if (spec.profile) {
    for (const [i, s] of sessions.entries()) {
      console.log(`PROFILE ${spec.models[i].label}`);
      s.endProfiling(); // web: the wasm module writes it to stdout; node: to a file
      if (profileDir) {
        for await (const e of Deno.readDir(profileDir)) {
          if (e.name.startsWith(`${i}_`)) {
            console.log(await Deno.readTextFile(`${profileDir}/${e.name}`));
          }
        }
      }
    }
    if (profileDir) await Deno.remove(profileDir, { recursive: true });
  }
  console.log(`RESULT ${JSON.stringify(results)}`);
}

// ---------------------------------------------------------------------------
// Model variants.
// ---------------------------------------------------------------------------

/**
 * fp32 model with every Gemm's weight stored [K, N] and transB = 0 (same
 * function). onnxruntime-web's QGemm cannot pre-pack B (no packing routine in
 * the wasm QGEMM dispatch), so with transB = 1 it transposes the whole int8
 * weight matrix on every run.
 *
 * @example
 * ```ts
 * const int8 = (await quantizeModel(gemmWeightsKn(fp32), calibration, evaluate, options)).bytes;
 * ```
 */
export function gemmWeightsKn(fp32: Uint8Array): Uint8Array {
  const model = decodeModel(fp32);
  const inits = new Map((model.graph!.initializer ?? []).map((t) => [t.name!, t]));
  for (const n of model.graph!.node ?? []) {
    const transB = n.attribute?.find((a) => a.name === "transB");
    if (n.opType !== "Gemm" || !transB || Number(transB.i) !== 1) continue;
    const w = inits.get(n.input![1]);
    if (!w) continue;
    // w: [N, K] -> [K, N]
    const [rows, cols] = (w.dims ?? []).map(Number);
    const src = floatValues(w), dst = new Float32Array(src.length);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
    }
    w.dims = [cols, rows];
    w.rawData = new Uint8Array(dst.buffer);
    w.floatData = [];
    transB.i = 0;
  }
  return onnx.ModelProto.encode(model).finish();
}

interface Variant {
  name: string;
  what: string;
  /** Builds the model bytes (given the fp32 model and the Gemm-[K, N] fp32 model). */
  build: (ctx: BuildContext) => Promise<Uint8Array>;
}

interface BuildContext {
  fp32: Uint8Array;
  fp32Kn: Uint8Array;
  quantize: (fp32: Uint8Array, options: QuantizeOptions) => Promise<Uint8Array>;
  /** Model optimized by onnxruntime-node at "extended" level (QDQ fused to QOperator ops). */
  nodeOptimized: (bytes: Uint8Array) => Promise<Uint8Array>;
}

const OUT: QuantizeOptions = { quantizeOutputs: true };
const RELU: QuantizeOptions = { quantizeOutputs: true, outputsAfterRelu: true };

const VARIANTS: Variant[] = [
  { name: "fp32", what: "fp32 model", build: (c) => Promise.resolve(c.fp32) },
  { name: "fp32-kn", what: "fp32, Gemm B as [K,N]", build: (c) => Promise.resolve(c.fp32Kn) },
  {
    name: "qdq",
    what: "QDQ, inputs only (quantize.ts default)",
    build: (c) => c.quantize(c.fp32, {}),
  },
  { name: "qdq-out", what: "QDQ + outputs before ReLU", build: (c) => c.quantize(c.fp32, OUT) },
  { name: "qdq-relu", what: "QDQ + outputs after ReLU", build: (c) => c.quantize(c.fp32, RELU) },
  {
    name: "qdq-relu-kn",
    what: "QDQ + outputs after ReLU, Gemm B [K,N]",
    build: (c) => c.quantize(c.fp32Kn, RELU),
  },
  {
    name: "qdq-relu-kn-s8a",
    what: "as qdq-relu-kn, int8 activations (s8s8)",
    build: (c) => c.quantize(c.fp32Kn, { ...RELU, activationType: "int8" }),
  },
  {
    name: "qdq-relu-kn-u8w",
    what: "as qdq-relu-kn, uint8 weights (u8u8)",
    build: (c) => c.quantize(c.fp32Kn, { ...RELU, weightType: "uint8" }),
  },
  {
    name: "qdq-relu-kn-pt",
    what: "as qdq-relu-kn, per-tensor weights",
    build: (c) => c.quantize(c.fp32Kn, { ...RELU, perChannel: false }),
  },
  {
    name: "qop-relu-kn",
    what: "QOperator (qdq-relu-kn fused by onnxruntime-node)",
    build: async (c) => c.nodeOptimized(await c.quantize(c.fp32Kn, RELU)),
  },
];

/** Session-option sweeps, run on these variants. */
const OPTION_VARIANTS = ["fp32", "qdq-relu-kn", "qdq-relu-kn-s8a"];
/** Realistic photos for the top-1 agreement column. */
const PHOTOS = 50;
/** Variants profiled per layer. */
const PROFILED = ["fp32", "qdq", "qdq-relu", "qdq-relu-kn", "qdq-relu-kn-s8a"];
const SESSION_OPTIONS: { name: string; options: Record<string, unknown> }[] = [
  { name: "defaults (level all, sequential)", options: {} },
  { name: "graphOptimizationLevel basic", options: { graphOptimizationLevel: "basic" } },
  { name: "graphOptimizationLevel extended", options: { graphOptimizationLevel: "extended" } },
  { name: "graphOptimizationLevel disabled", options: { graphOptimizationLevel: "disabled" } },
  { name: "executionMode parallel", options: { executionMode: "parallel" } },
  {
    name: "enableCpuMemArena + enableMemPattern",
    options: { enableCpuMemArena: true, enableMemPattern: true },
  },
  { name: "freeDimensionOverrides N=1", options: { freeDimensionOverrides: { N: 1 } } },
  {
    name: "session.disable_quant_qdq=1",
    options: { extra: { session: { disable_quant_qdq: "1" } } },
  },
  {
    name: "session.qdqisint8allowed=1",
    options: { extra: { session: { qdqisint8allowed: "1" } } },
  },
  {
    name: "session.intra_op.allow_spinning=0",
    options: { extra: { session: { intra_op: { allow_spinning: "0" } } } },
  },
];

// ---------------------------------------------------------------------------
// Parent.
// ---------------------------------------------------------------------------

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const argmax = (xs: number[]) => xs.indexOf(Math.max(...xs));

interface ProfileEvent {
  name: string;
  dur: number;
  op: string;
  inputTypes: string;
}

type Measured = Record<string, SessionResult & { profile: ProfileEvent[] }>;

async function spawn(spec: ChildSpec): Promise<Measured> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--child", JSON.stringify(spec)],
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout, stderr } = await cmd.output();
  const lines = new TextDecoder().decode(stdout).split("\n");
  const line = lines.find((l) => l.startsWith("RESULT "));
  if (code !== 0 || !line) {
    throw new Error(
      `Cannot measure [${spec.models.map((m) => m.label)}] (${spec.engine}, ${spec.threads} ` +
        `threads): exit ${code}\n${new TextDecoder().decode(stderr).slice(-2000)}`,
    );
  }
  const measured: Measured = {};
  for (
    const [label, r] of Object.entries(JSON.parse(line.slice(7)) as Record<string, SessionResult>)
  ) {
    measured[label] = { ...r, profile: [] };
  }
  let current: ProfileEvent[] = [];
  for (const l of lines) {
    if (l.startsWith("PROFILE ")) current = measured[l.slice(8)].profile;
    if (!l.startsWith('{"cat" : "Node"')) continue;
    const e = JSON.parse(l.replace(/,\s*$/, ""));
    if (!e.name.endsWith("_kernel_time")) continue;
    current.push({
      name: e.name.replace(/_kernel_time$/, ""),
      dur: e.dur,
      op: e.args.op_name,
      // "type:rank" of each input the kernel still reads at run time (pre-packed weights are not listed)
      inputTypes: (e.args.input_type_shape ?? [])
        .map((t: Record<string, unknown[]>) => `${Object.keys(t)[0]}:${Object.values(t)[0].length}`)
        .join(","),
    });
  }
  return measured;
}

/** Which row of the per-layer table a profiled node belongs to. */
function layerOf(node: string, op: string): string {
  const m = /^(?:fused )?(conv[1-5]|fc[678])_\d/.exec(node);
  if (m && !["QuantizeLinear", "DequantizeLinear", "Relu"].includes(op)) return m[1];
  if (op === "LRN" || op === "MaxPool") return op;
  return "Q / DQ / Transpose / ReLU / other";
}

const LAYERS = [
  "conv1",
  "conv2",
  "conv3",
  "conv4",
  "conv5",
  "fc6",
  "fc7",
  "fc8",
  "LRN",
  "MaxPool",
  "Q / DQ / Transpose / ReLU / other",
];

/** Median per layer (ms) over the profiled runs after the first. */
function perLayer(
  events: ProfileEvent[],
): { layers: Map<string, number>; ops: Map<string, string> } {
  const byNode = new Map<string, { op: string; durs: number[]; types: string }>();
  for (const e of events) {
    const entry = byNode.get(e.name) ?? { op: e.op, durs: [], types: e.inputTypes };
    entry.durs.push(e.dur);
    byNode.set(e.name, entry);
  }
  const layers = new Map<string, number>();
  const ops = new Map<string, string>();
  for (const [name, { op, durs, types }] of byNode) {
    const layer = layerOf(name, op);
    layers.set(layer, (layers.get(layer) ?? 0) + median(durs.slice(1)) / 1000);
    if (LAYERS.indexOf(layer) < 8) {
      // X's type, and W's (or B's) when the kernel reads it at run time instead of a pre-packed copy
      const [x, ...rest] = types.split(",").map((t) => t.split(":"));
      const w = rest.find(([, rank]) => Number(rank) >= 2);
      const kernel = `${op}(${x[0]}, ${w ? `W ${w[0]} read per run` : "W prepacked"})`;
      ops.set(layer, ops.has(layer) ? `${ops.get(layer)} + ${kernel}` : kernel);
    }
  }
  return { layers, ops };
}

/** Splits `xs` into groups of at most `size`. */
const chunks = <T>(xs: T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(xs.length / size) }, (_, i) => xs.slice(i * size, (i + 1) * size));

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "20" },
      threads: { type: "string", default: "1,2" },
      variants: { type: "string" },
      parts: { type: "string", default: "variants,options,profile" },
      "no-node": { type: "boolean", default: false },
      "ort-node": { type: "string", default: "/tmp/ortnode" },
      dir: { type: "string" },
    },
  });
  const runs = Number(values.runs);
  const parts = values.parts!.split(",");
  const threadCounts = values.threads!.split(",").map(Number);
  const ortNode = values["ort-node"]!;
  const haveNode = !values["no-node"] &&
    await Deno.stat(`${ortNode}/node_modules/onnxruntime-node/package.json`).then(
      () => true,
      () => false,
    );
  const chosen = values.variants?.split(",") ?? VARIANTS.map((v) => v.name);
  const variants = VARIANTS.filter((v) => chosen.includes(v.name) || v.name === "fp32")
    .filter((v) => haveNode || !v.name.startsWith("qop"));
  const dir = values.dir ?? await Deno.makeTempDir({ prefix: "int8_formats_" });
  await Deno.mkdir(dir, { recursive: true });
  const log = (s: string) => console.error(s);

  // Inputs: three fixtures, preprocessed as the manifest says; chelsea.jpg is the timed one.
  const model = await loadModel(await ensureSyntheticModel(1));
  const { preprocessing: spec, input, output } = model.manifest;
  const fixtures = ["chelsea.jpg", "coffee.png", "rocket.jpg"];
  const inputPaths: string[] = [];
  for (const f of fixtures) {
    const bytes = await Deno.readFile(new URL(`../tests/fixtures/${f}`, import.meta.url));
    const path = `${dir}/${f}.f32`;
    await Deno.writeFile(path, new Uint8Array(preprocess(await decodeImage(bytes), spec).buffer));
    inputPaths.push(path);
  }
  // And 50 realistic photos (tests/_photos.ts, the set quantize_test.ts uses) for top-1 agreement.
  const photoPaths: string[] = [];
  for (const [i, img] of (await realisticPhotos(PHOTOS, 202)).entries()) {
    const path = `${dir}/photo_${i}.f32`;
    await Deno.writeFile(path, new Uint8Array(preprocess(img, spec).buffer));
    photoPaths.push(path);
  }

  // Build the variants (skipping files already in --dir).
  const paths = new Map<string, string>();
  let ctx: BuildContext | undefined;
  for (const v of variants) {
    const path = `${dir}/${v.name}.onnx`;
    paths.set(v.name, path);
    if (await Deno.stat(path).then(() => true, () => false)) continue;
    ctx ??= await buildContext(model.bytes, spec, input.name, dir, ortNode);
    log(`building ${v.name}`);
    await Deno.writeFile(path, await v.build(ctx));
  }

  const measure = (
    engine: "web" | "node",
    threads: number,
    models: ChildModel[],
    extra: Partial<ChildSpec> = {},
  ) => {
    log(`measuring [${models.map((m) => m.label)}] (${engine}, ${threads} thr)`);
    return spawn({
      engine,
      models,
      threads,
      runs,
      inputs: inputPaths,
      inputName: input.name,
      outputName: output.name,
      profile: false,
      ortNode,
      ...extra,
    });
  };
  const asModel = (name: string, options: Record<string, unknown> = {}, label = name) => ({
    label,
    path: paths.get(name)!,
    options,
  });

  const date = new Date().toISOString().slice(0, 10);
  console.log(
    `\n## int8 formats (${date}, ${runs} runs round-robin, Deno ${Deno.version.deno}, ` +
      `${navigator.hardwareConcurrency} cores)\n`,
  );

  // Correctness against fp32 on onnxruntime-web comes first; a variant whose
  // top-1 differs on the timed photo is reported but not timed.
  const allInputs = [...inputPaths, ...photoPaths];
  const reference =
    (await measure("web", 1, [asModel("fp32")], { runs: 0, inputs: allInputs })).fp32.outputs;
  const check = (outs: number[][]) => {
    const same = outs.map((o, i) => argmax(o) === argmax(reference[i]));
    return {
      ok: same[0],
      agree: same.slice(0, fixtures.length).filter(Boolean).length,
      photos: same.slice(fixtures.length).filter(Boolean).length,
      maxDiff: Math.max(
        ...outs.slice(0, fixtures.length).flatMap((o, i) =>
          o.map((x, j) => Math.abs(x - reference[i][j]))
        ),
      ),
    };
  };
  const engines: ("web" | "node")[] = haveNode ? ["web", "node"] : ["web"];
  for (const engine of parts.includes("variants") ? engines : []) {
    const names = variants.map((v) => v.name).filter((n) =>
      engine === "web" || !n.startsWith("qop")
    );
    const first = await measure(engine, threadCounts[0], names.map((n) => asModel(n)), {
      runs: 0,
      inputs: allInputs,
    });
    const good = names.filter((n) => check(first[n].outputs).ok);
    const byThreads: Measured[] = [];
    for (const t of threadCounts) {
      byThreads.push(await measure(engine, t, good.map((n) => asModel(n))));
    }
    console.log(`\n### onnxruntime-${engine} 1.30, median ms per inference (chelsea.jpg)\n`);
    console.log(
      `| variant | what | top-1 = fp32 (${fixtures.length} fixtures) | top-1 = fp32 ` +
        `(${PHOTOS} photos) | max abs diff of probabilities | ` +
        threadCounts.map((t) => `${t} thr ms (img/s)`).join(" | ") + " | vs fp32 |",
    );
    console.log(`|---|---|---|---|---|${threadCounts.map(() => "---|").join("")}---|`);
    for (const n of names) {
      const v = variants.find((x) => x.name === n)!;
      const c = check(first[n].outputs);
      const top = `${c.ok ? "yes" : "**differs**"} (${c.agree}/${fixtures.length})`;
      const ms = byThreads.map((m) => m[n] ? median(m[n].times) : NaN);
      const cells = ms.map((x) =>
        Number.isNaN(x) ? "not timed" : `${x.toFixed(1)} (${(1000 / x).toFixed(1)})`
      );
      const ratio = ms.map((x, i) =>
        Number.isNaN(x) ? "-" : (x / median(byThreads[i].fp32.times)).toFixed(2)
      );
      console.log(
        `| ${n} | ${v.what} | ${top} | ${c.photos}/${PHOTOS} | ${c.maxDiff.toExponential(1)} | ` +
          `${cells.join(" | ")} | ` +
          `${ratio.join(" / ")} |`,
      );
    }
  }

  // Session options (onnxruntime-web): each group of options is timed round-robin with the
  // defaults in the same process, and reported as ms and as a ratio to those defaults.
  if (parts.includes("options")) {
    const names = OPTION_VARIANTS.filter((n) => paths.has(n));
    const cells = new Map<string, string[]>(SESSION_OPTIONS.map((o) => [o.name, []]));
    for (const n of names) {
      for (const t of threadCounts) {
        // fp32 sessions hold ~0.5 GB of the 4 GB wasm heap each: fewer per process.
        const groups = chunks(SESSION_OPTIONS.slice(1), n.startsWith("fp32") ? 3 : 8);
        const per = new Map<string, string>();
        const bases: number[] = [];
        for (const g of groups) {
          const m = await measure("web", t, [
            asModel(n, {}, SESSION_OPTIONS[0].name),
            ...g.map((o) => asModel(n, o.options, o.name)),
          ]);
          const base = median(m[SESSION_OPTIONS[0].name].times);
          bases.push(base);
          for (const o of g) {
            const r = m[o.name];
            per.set(
              o.name,
              check(r.outputs).ok
                ? `${(median(r.times) / base).toFixed(2)} (${median(r.times).toFixed(1)})`
                : "differs",
            );
          }
        }
        const lo = Math.min(...bases).toFixed(1), hi = Math.max(...bases).toFixed(1);
        per.set(SESSION_OPTIONS[0].name, `1.00 (${lo === hi ? lo : `${lo}-${hi}`})`);
        for (const o of SESSION_OPTIONS) cells.get(o.name)!.push(per.get(o.name)!);
      }
    }
    console.log(
      `\n### onnxruntime-web session options: ratio to the defaults timed in the same process ` +
        `(median ms)\n`,
    );
    const heads = names.flatMap((n) => threadCounts.map((t) => `${n}, ${t} thr`));
    console.log(`| session options | ${heads.join(" | ")} |`);
    console.log(`|---|${heads.map(() => "---|").join("")}`);
    for (const o of SESSION_OPTIONS) {
      console.log(`| ${o.name} | ${cells.get(o.name)!.join(" | ")} |`);
    }
  }

  // Per layer, from onnxruntime's profiler (all profiled variants in one process).
  if (parts.includes("profile")) {
    const profiled = PROFILED.filter((n) => paths.has(n));
    for (const engine of engines) {
      const names = profiled.filter((n) => engine === "web" || !n.startsWith("qop"));
      // One thread only: with profiling on, multithreaded onnxruntime-web runs slow down
      // several times over, so its per-node times at 2 threads say little.
      for (const t of threadCounts.slice(0, 1)) {
        const m = await measure(engine, t, names.map((n) => asModel(n)), {
          profile: true,
          runs: Math.min(runs, 10),
        });
        const results = names.map((n) => perLayer(m[n].profile));
        console.log(
          `\n### Per layer, onnxruntime-${engine} profiler, ${t} thread${t > 1 ? "s" : ""}, ` +
            `median ms\n`,
        );
        console.log(`| layer | ${names.join(" | ")} |`);
        console.log(`|---|${names.map(() => "---|").join("")}`);
        for (const layer of [...LAYERS, "sum of nodes", "session.run (median)"]) {
          const cells = names.map((n, i) => {
            const r = results[i];
            const v = layer === "sum of nodes"
              ? [...r.layers.values()].reduce((a, b) => a + b, 0)
              : layer === "session.run (median)"
              ? median(m[n].times)
              : r.layers.get(layer) ?? 0;
            return v.toFixed(1);
          });
          console.log(`| ${layer} | ${cells.join(" | ")} |`);
        }
        {
          console.log(
            `\nKernels per layer, onnxruntime-${engine} (op type, X type, how W is held):\n`,
          );
          console.log(`| layer | ${names.join(" | ")} |`);
          console.log(`|---|${names.map(() => "---|").join("")}`);
          for (const layer of LAYERS.slice(0, 8)) {
            console.log(
              `| ${layer} | ${results.map((r) => r.ops.get(layer) ?? "-").join(" | ")} |`,
            );
          }
        }
      }
    }
  }
  if (!values.dir) await Deno.remove(dir, { recursive: true });
}

/** Calibration set, evaluator and onnxruntime-node optimizer, made once a variant needs building. */
async function buildContext(
  fp32: Uint8Array,
  spec: Parameters<typeof preprocess>[1],
  inputName: string,
  dir: string,
  ortNode: string,
): Promise<BuildContext> {
  // Calibration: 20 realistic photos (tests/_photos.ts, seed 101), as quantize_test.ts does; a
  // fixed set, unlike tests/fixtures/, which grows, and disjoint from the 50 evaluation photos.
  const calibration = (await realisticPhotos(20, 101)).map((img) => preprocess(img, spec));
  const evaluate = wasmEvaluator(inputName, [1, 3, spec.height, spec.width]);
  return {
    fp32,
    fp32Kn: gemmWeightsKn(fp32),
    quantize: async (bytes, options) =>
      (await quantizeModel(bytes, calibration, evaluate, options)).bytes,
    nodeOptimized: async (bytes) => {
      const ort = createRequire(`file://${ortNode}/`)("onnxruntime-node");
      const src = `${dir}/_qdq_for_node.onnx`, dst = `${dir}/_node_optimized.onnx`;
      await Deno.writeFile(src, bytes);
      const s = await ort.InferenceSession.create(src, {
        graphOptimizationLevel: "extended",
        optimizedModelFilePath: dst,
      });
      await s.release();
      const out = await Deno.readFile(dst);
      await Deno.remove(src);
      await Deno.remove(dst);
      return out;
    },
  };
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--child");
  if (i >= 0) await child(JSON.parse(Deno.args[i + 1]) as ChildSpec);
  else await main();
  Deno.exit(0);
}
