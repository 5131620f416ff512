/**
 * Where the time of the int8 chain goes: our kernels for every node of the
 * quantized AlexNet (models/alexnet-synthetic-int8.onnx, `deno task quantize`),
 * timed one step at a time, medians over 30 runs after 10 warm-up runs. With
 * `--threads 2` the runs of Conv, LRN and MaxPool go as split chains (one step each,
 * as src/runtime/partitioned.ts runs them) and each Gemm is split across a helper
 * Worker; `--compare` also times, interleaved in the same process, the layout
 * without chains (each Conv split alone, LRN and MaxPool on the main thread).
 *
 * `--model FILE.onnx` times another int8 file instead (a QOperator one is rewritten
 * to QDQ first, as the server does: src/graph/qoperator.ts), e.g.
 * models/alexnet-synthetic-qoperator.onnx (bench/int8_speed.ts --set qoperator builds it).
 *
 *   deno run -A bench/int8_steps.ts [--threads N] [--compare] [--runs 30] [--model FILE]
 */
import { parseArgs } from "node:util";
import { decodeImage, preprocess } from "../src/image/mod.ts";
import { partitionModel } from "../src/graph/partition.ts";
import { forInt8Kernels } from "../src/graph/qoperator.ts";
import { loadModel } from "../src/model/store.ts";
import { type CustomKernel, kernelRegistry, type TensorValue } from "../src/runtime/custom_ops.ts";
import { chainRun } from "../src/runtime/partitioned.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    threads: { type: "string" },
    compare: { type: "boolean" },
    runs: { type: "string" },
    model: { type: "string" },
  },
});
const threads = Number(values.threads ?? 1);
const runs = Number(values.runs ?? 30);
const int8 = await loadModel(new URL("../models/alexnet-synthetic-int8.json", import.meta.url));
const bytes = values.model ? await forInt8Kernels(await Deno.readFile(values.model)) : int8.bytes;
const photo = await Deno.readFile(new URL("../tests/fixtures/chelsea.jpg", import.meta.url));
const x = preprocess(await decodeImage(photo), int8.manifest.preprocessing);

type Step = { name: string; inputs: string[]; outputs: string[]; kernel: CustomKernel };

/** The model's steps on our kernels, grouped into chains as the runner groups them. */
async function stepsFor(chains: boolean): Promise<Step[]> {
  const registry = kernelRegistry("ort", "custom", { threads, chains });
  const { parts, outputs } = partitionModel(bytes, new Set(registry.keys()), {
    fuseQdq: (n) => registry.get(n.opType!)?.fusesQdq ?? false,
    accept: (p) => registry.get(p.node.opType!)?.accepts?.(p) ?? true,
    wholeGraphOnly: (n) => registry.get(n.opType!)?.wholeGraphOnly ?? false,
  });
  const consumers = new Map<string, number>();
  for (const n of [...parts.flatMap((p) => p.inputs), ...outputs]) {
    consumers.set(n, (consumers.get(n) ?? 0) + 1);
  }
  const steps: Step[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (part.kind !== "kernel") throw new Error("Cannot time the chain: a part needs onnxruntime");
    const run = registry.chain ? chainRun(parts, i, consumers) : [];
    const chain = run.length >= 2 ? await registry.chain!(run) : undefined;
    if (chain) {
      const taken = run.slice(0, chain.taken);
      const name = taken.map((p) => `${p.node.name} (${p.opType})`).join(" + ");
      const { inputs } = part, { outputs } = taken[taken.length - 1];
      steps.push({ name, inputs, outputs, kernel: chain.kernel });
      i += chain.taken - 1;
    } else {
      const kernel = await registry.get(part.opType)!(part);
      steps.push({ name: `${part.node.name} (${part.opType})`, ...part, kernel });
    }
  }
  return steps;
}

/** One inference, step by step; pushes each step's time when `times` is given. */
function runOnce(steps: Step[], times?: number[][]): Float32Array {
  const env = new Map<string, TensorValue>([["data_0", { data: x, dims: [1, 3, 224, 224] }]]);
  steps.forEach((s, i) => {
    const t = performance.now();
    const out = s.kernel.run(s.inputs.map((n) => env.get(n)!));
    times?.[i].push(performance.now() - t);
    s.outputs.forEach((n, j) => env.set(n, out[j]));
  });
  return env.get("softmaxout_1")!.data.slice();
}

const layouts = values.compare && threads > 1
  ? [["chains", await stepsFor(true)], ["no chains", await stepsFor(false)]] as const
  : [[threads > 1 ? "chains" : "one thread", await stepsFor(true)]] as const;
// Correctness first: every layout gives the same bits.
const outs = layouts.map(([, steps]) => runOnce(steps));
for (const o of outs) {
  if (!o.every((v, i) => Object.is(v, outs[0][i]))) {
    throw new Error("Cannot time the layouts: they give different outputs");
  }
}
const times = layouts.map(([, steps]) => steps.map(() => [] as number[]));
const totals = layouts.map(() => [] as number[]);
for (let run = 0; run < runs + 10; run++) {
  layouts.forEach(([, steps], j) => {
    const t = performance.now();
    runOnce(steps, run >= 10 ? times[j] : undefined);
    if (run >= 10) totals[j].push(performance.now() - t);
  });
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
for (const [j, [label, steps]] of layouts.entries()) {
  console.log(
    `\nthreads ${threads}, ${label}, ${runs} runs, ${new Date().toISOString().slice(0, 16)}Z`,
  );
  console.log(`| step | median ms |\n|---|---|`);
  let sum = 0;
  steps.forEach((s, i) => {
    sum += median(times[j][i]);
    console.log(`| ${s.name} | ${median(times[j][i]).toFixed(2)} |`);
  });
  console.log(`| sum of medians | ${sum.toFixed(1)} |`);
  console.log(`| whole inference (median) | ${median(totals[j]).toFixed(1)} |`);
}
for (const [, steps] of layouts) for (const s of steps) s.kernel.release?.();
Deno.exit(0);
