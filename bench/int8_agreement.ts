/**
 * How closely the int8 synthetic AlexNet follows its fp32 source: quantizes
 * with the given options (calibrated on realistic photos, seed 101), runs the
 * int8 model on other realistic photos (seed 202) and prints top-1 agreement,
 * mean top-5 overlap and the size of the log-probability error, one line per
 * run. fp32's answers are cached (in the system's temp folder) per model and
 * photo set (model bytes and the photos' tensors).
 *
 *   deno run -A bench/int8_agreement.ts [--opt key=value ...] [--calibration 20]
 *       [--evaluation 50[,150]] [--eval-seed 202[,303]] [--ablate activations|weights]
 *       [--runtime ort|ours] [--label text] [--save model.onnx]
 *
 * `--opt` sets one {@linkcode QuantizeOptions} field (numbers and booleans are
 * parsed; `weightOnly` takes a comma-separated list), e.g. `--opt method=percentile
 * --opt weightRounding=nearest --opt weightOnly=Gemm,Conv`.
 * The default model is weight-only int8 (no activation Q/DQ); `--opt weightOnly=`
 * (empty) writes the uint8-activation QDQ model the ablations take apart:
 * `--ablate activations` removes its activations' Q/DQ pairs (`activations-but=a,b`
 * all but those), `--ablate weights` puts the float weights back (activation-only).
 * `--runtime ours` runs the int8 model on our kernels (src/runtime) instead of
 * onnxruntime's evaluation of the graph; layers left without an input Q/DQ run
 * there as weight-only layers (input rounded per call to up to int16).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-web";
import { preprocess } from "../src/image/mod.ts";
import { decodeModel, onnx } from "../src/graph/onnx.ts";
import { quantizeModel, type QuantizeOptions } from "../src/graph/quantize.ts";
import { ensureSyntheticModel, loadModel } from "../src/model/store.ts";
import { wasmEvaluator } from "../src/runtime/evaluate.ts";
import { realisticPhotos } from "../tests/_photos.ts";

const INPUT = "data_0", OUTPUT = "softmaxout_1", CLASSES = 1000;
const DIMS = [1, 3, 224, 224];

/** Indices of the k largest values, largest first. */
function top(x: Float32Array, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < x.length; i++) {
    if (idx.length < k || x[i] > x[idx[k - 1]]) {
      idx.push(i);
      idx.sort((a, b) => x[b] - x[a]);
      if (idx.length > k) idx.pop();
    }
  }
  return idx;
}

/** A `run(x) -> probabilities` for model bytes on onnxruntime-web or our kernels. */
async function runner(bytes: Uint8Array, runtime: string) {
  if (runtime === "ours") {
    // Loaded only here (a variable specifier keeps it out of the module graph otherwise).
    const runtimeMod = "../src/runtime/mod.ts";
    const { createWasmBackend } = await import(runtimeMod) as {
      createWasmBackend: (bytes: Uint8Array, options: Record<string, string>) => Promise<{
        kernels: Record<string, string>;
        run: (x: Float32Array, dims: number[]) => Promise<{ data: Float32Array }>;
        release: () => Promise<void>;
      }>;
    };
    const backend = await createWasmBackend(bytes, {
      inputName: INPUT,
      outputName: OUTPUT,
      int8: "custom",
    });
    console.error(`kernels: ${JSON.stringify(backend.kernels)}`);
    return {
      run: async (x: Float32Array) => (await backend.run(x, DIMS)).data,
      release: () => backend.release(),
    };
  }
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  return {
    run: async (x: Float32Array) =>
      (await session.run({ [INPUT]: new ort.Tensor("float32", x, DIMS) }))[OUTPUT]
        .data as Float32Array,
    release: () => session.release(),
  };
}

/** Removes the activation (`acts`) or weight (`weights`) Q/DQ pairs of a QDQ model. */
function ablate(bytes: Uint8Array, fp32: Uint8Array, what: string): Uint8Array {
  const model = decodeModel(bytes);
  const graph = model.graph!;
  const nodes = graph.node!;
  const inits = new Set(graph.initializer!.map((t) => t.name));
  const rename = new Map<string, string>();
  const drop = new Set<unknown>();
  if (what.startsWith("activations")) {
    // `activations`: all of them; `activations-but=a,b`: all except those.
    const keep = new Set(what.split("=")[1]?.split(",") ?? []);
    for (const n of nodes) {
      if (n.opType === "QuantizeLinear" && !inits.has(n.input![0]) && !keep.has(n.input![0])) {
        const dq = nodes.find((d) =>
          d.opType === "DequantizeLinear" && d.input![0] === n.output![0]
        );
        drop.add(n);
        drop.add(dq);
        rename.set(dq!.output![0], n.input![0]);
      }
    }
  } else if (what === "weights") {
    const float = new Map(decodeModel(fp32).graph!.initializer!.map((t) => [t.name!, t]));
    for (const n of nodes) {
      const w = n.input![0];
      // The weights and their (bias-corrected) biases.
      if (n.opType === "DequantizeLinear" && /_[wb]_0_quantized$/.test(w)) {
        drop.add(n);
        const name = w.slice(0, -"_quantized".length);
        rename.set(n.output![0], name);
        graph.initializer!.push(float.get(name)!);
      }
    }
  } else throw new RangeError(`Cannot ablate ${what}: expected activations or weights`);
  graph.node = nodes.filter((n) => !drop.has(n)).map((n) => ({
    ...n,
    input: n.input!.map((i) => rename.get(i) ?? i),
  }));
  return onnx.ModelProto.encode(model).finish();
}

function parseOpt(pairs: string[]): QuantizeOptions {
  const out: Record<string, unknown> = {};
  for (const p of pairs) {
    const [k, v] = p.split("=");
    // A list: `--opt weightOnly=Gemm,conv1_1` (empty: none).
    if (k === "weightOnly") out[k] = v.split(",").filter((x) => x !== "");
    else out[k] = v === "true" ? true : v === "false" ? false : v !== "" && !isNaN(+v) ? +v : v;
  }
  return out as QuantizeOptions;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      opt: { type: "string", multiple: true, default: [] },
      calibration: { type: "string", default: "20" },
      "calib-seed": { type: "string", default: "101" },
      evaluation: { type: "string", default: "50" },
      "eval-seed": { type: "string", default: "202" },
      ablate: { type: "string", multiple: true, default: [] },
      runtime: { type: "string", default: "ort" },
      label: { type: "string" },
      save: { type: "string" },
      threads: { type: "string", default: "1" },
    },
  });
  ort.env.wasm.numThreads = Number(values.threads);
  const model = await loadModel(await ensureSyntheticModel(1));
  const spec = model.manifest.preprocessing;
  const tensor = (img: Parameters<typeof preprocess>[0]) => preprocess(img, spec);
  const nCal = Number(values.calibration), calSeed = Number(values["calib-seed"]);
  // Evaluation sets: `--evaluation 50,150 --eval-seed 202,303` gives two.
  const counts = values.evaluation!.split(",").map(Number);
  const seeds = values["eval-seed"]!.split(",").map(Number);
  if (seeds.includes(calSeed)) throw new RangeError("Cannot evaluate on the calibration photos");

  // fp32 answers, cached per model bytes and photo set.
  const key = createHash("sha256").update(model.bytes).digest("hex").slice(0, 16);
  const cacheDir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/alexnet-edge-int8-agreement`;
  const sets = [];
  for (const [s, evalSeed] of seeds.entries()) {
    const nEval = counts[s] ?? counts[0];
    const photos = (await realisticPhotos(nEval, evalSeed)).map(tensor);
    // Keyed by the photos' tensors too: a decoder or resize change alters them.
    const photoHash = createHash("sha256");
    for (const x of photos) photoHash.update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    const cacheFile = `${cacheDir}/fp32-${key}-${photoHash.digest("hex").slice(0, 16)}.bin`;
    let ref: Float32Array;
    try {
      ref = new Float32Array((await Deno.readFile(cacheFile)).buffer);
    } catch {
      ref = new Float32Array(nEval * CLASSES);
      const fp32 = await runner(model.bytes, "ort");
      for (const [i, x] of photos.entries()) ref.set(await fp32.run(x), i * CLASSES);
      await fp32.release();
      await Deno.mkdir(cacheDir, { recursive: true });
      await Deno.writeFile(cacheFile, new Uint8Array(ref.buffer));
    }
    sets.push({ seed: evalSeed, photos, ref });
  }

  const options = parseOpt(values.opt!);
  const started = performance.now();
  const calibration = (await realisticPhotos(nCal, calSeed)).map(tensor);
  let { bytes } = await quantizeModel(
    model.bytes,
    calibration,
    wasmEvaluator(INPUT, DIMS),
    options,
  );
  const quantizeMs = performance.now() - started;
  for (const a of values.ablate!) bytes = ablate(bytes, model.bytes, a);
  if (values.save) await Deno.writeFile(values.save, bytes);

  const int8 = await runner(bytes, values.runtime!);
  const label = values.label ??
    [
      ...values.opt!,
      ...values.ablate!.map((a) => `ablate=${a}`),
      `calibration=${nCal}`,
      `runtime=${values.runtime}`,
    ].join(" ");
  for (const { seed, photos, ref } of sets) {
    const nEval = photos.length;
    let top1 = 0, overlap = 0, sq = 0, count = 0, gapSq = 0;
    const flips: string[] = [];
    for (const [i, x] of photos.entries()) {
      const a = ref.subarray(i * CLASSES, (i + 1) * CLASSES);
      const b = await int8.run(x);
      const [ta, tb] = [top(a, 10), top(b, 5)];
      if (ta[0] === tb[0]) top1++;
      else {
        const gap = Math.log(a[ta[0]]) - Math.log(a[ta[1]]);
        flips.push(`#${i} (fp32 gap ${gap.toFixed(3)})`);
      }
      overlap += tb.filter((c) => ta.slice(0, 5).includes(c)).length;
      // Error of fp32's top-1 vs top-2 margin: what a flip takes.
      const margin = (p: Float32Array) => Math.log(p[ta[0]]) - Math.log(p[ta[1]]);
      gapSq += (margin(b) - margin(a)) ** 2;
      // Log-probability error on fp32's top 10 classes, mean removed (a shift
      // of all log-probabilities changes no ranking).
      const d = ta.map((c) => Math.log(b[c]) - Math.log(a[c]));
      const mean = d.reduce((s, v) => s + v, 0) / d.length;
      for (const v of d) sq += (v - mean) ** 2;
      count += d.length;
    }
    // The fp32 margins the errors compete with.
    const gaps = Array.from({ length: nEval }, (_, i) => {
      const a = ref.subarray(i * CLASSES, (i + 1) * CLASSES), [t1, t2] = top(a, 2);
      return Math.log(a[t1]) - Math.log(a[t2]);
    });
    console.log(
      `${label} | eval seed ${seed}: top-1 ${top1}/${nEval} (${
        (100 * top1 / nEval).toFixed(1)
      }%), top-5 overlap ${(overlap / nEval).toFixed(2)}, log-prob rms err ${
        Math.sqrt(sq / count).toFixed(4)
      }, margin rms err ${Math.sqrt(gapSq / nEval).toFixed(4)}, quantize ${
        (quantizeMs / 1000).toFixed(1)
      } s; fp32 gaps < 0.1: ${gaps.filter((g) => g < 0.1).length}; flips: ${
        flips.join(", ") || "none"
      }`,
    );
  }
  await int8.release();
}
