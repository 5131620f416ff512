/**
 * Where the time of the int8 chain goes: our kernels for every node of the
 * quantized AlexNet (models/alexnet-synthetic-int8.onnx, `deno task quantize`),
 * timed one step at a time, medians over 30 runs after 10 warm-up runs; with
 * `--threads 2` each int8 layer is split across a helper Worker.
 *
 *   deno run -A bench/int8_steps.ts [--threads N]
 */
import { parseArgs } from "node:util";
import { decodeImage, preprocess } from "../src/image/mod.ts";
import { partitionModel } from "../src/model/partition.ts";
import { loadModel } from "../src/model/store.ts";
import { kernelRegistry, type TensorValue } from "../src/runtime/custom_ops.ts";

const { values } = parseArgs({ args: Deno.args, options: { threads: { type: "string" } } });
const threads = Number(values.threads ?? 1);
const int8 = await loadModel(new URL("../models/alexnet-synthetic-int8.json", import.meta.url));
const photo = await Deno.readFile(new URL("../tests/fixtures/chelsea.jpg", import.meta.url));
const x = preprocess(await decodeImage(photo), int8.manifest.preprocessing);
const registry = kernelRegistry("ort", "custom", { threads });
const { parts } = partitionModel(int8.bytes, new Set(registry.keys()), {
  fuseQdq: (n) => registry.get(n.opType!)?.fusesQdq ?? false,
  accept: (p) => registry.get(p.node.opType!)?.accepts?.(p) ?? true,
  wholeGraphOnly: (n) => registry.get(n.opType!)?.wholeGraphOnly ?? false,
});
const steps = [];
for (const part of parts) {
  if (part.kind !== "kernel") throw new Error("Cannot time the chain: a part needs onnxruntime");
  steps.push({ name: part.node.name!, part, kernel: await registry.get(part.opType)!(part) });
}
const times = steps.map(() => [] as number[]);
for (let run = 0; run < 40; run++) {
  const env = new Map<string, TensorValue>([["data_0", { data: x, dims: [1, 3, 224, 224] }]]);
  steps.forEach((s, i) => {
    const t = performance.now();
    const out = s.kernel.run(s.part.inputs.map((n) => env.get(n)!));
    if (run >= 10) times[i].push(performance.now() - t);
    s.part.outputs.forEach((n, j) => env.set(n, out[j]));
  });
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
console.log(
  `threads ${threads}, ${new Date().toISOString().slice(0, 10)}\n| step | median ms |\n|---|---|`,
);
let total = 0;
steps.forEach((s, i) => {
  total += median(times[i]);
  console.log(`| ${s.name} (${s.part.opType}) | ${median(times[i]).toFixed(2)} |`);
});
console.log(`| sum | ${total.toFixed(1)} |`);
for (const s of steps) s.kernel.release?.();
Deno.exit(0);
