/**
 * Whole-model latency with our LRN kernel (partitioned: 3 onnxruntime
 * sessions + 2 kernel calls) vs onnxruntime-web's built-in LRN (one session),
 * interleaved in one process at one thread count.
 *
 *   deno run -A bench/lrn_model.ts [--threads N] [--runs 40]
 */
import { parseArgs } from "node:util";
import { decodeImage, preprocess } from "../src/image/mod.ts";
import { ensureSyntheticModel, loadModel } from "../src/model/store.ts";
import { availableCores, createWasmBackend } from "../src/runtime/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string" }, threads: { type: "string" } },
});
const runs = Number(values.runs ?? 40);
const threads = Number(values.threads ?? availableCores());
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const model = await loadModel(await ensureSyntheticModel(1));
const io = {
  inputName: model.manifest.input.name,
  outputName: model.manifest.output.name,
  threads,
};
const custom = await createWasmBackend(model.bytes, { ...io, eagerThreads: true, lrn: "custom" });
const builtin = await createWasmBackend(model.bytes, { ...io, eagerThreads: true, lrn: "ort" });
const photo = await Deno.readFile(new URL("../tests/fixtures/chelsea.jpg", import.meta.url));
const x = preprocess(await decodeImage(photo), model.manifest.preprocessing);
const dims = [1, 3, 224, 224];

// Correctness first.
const a = await custom.run(x, dims), b = await builtin.run(x, dims);
let diff = 0;
for (let i = 0; i < a.data.length; i++) diff = Math.max(diff, Math.abs(a.data[i] - b.data[i]));
if (diff > 1e-6) throw new Error(`Outputs differ by ${diff}`);

const tc: number[] = [], tb: number[] = [];
for (let i = 0; i < 5; i++) await Promise.all([custom.run(x, dims), builtin.run(x, dims)]);
for (let i = 0; i < runs; i++) {
  let t = performance.now();
  await custom.run(x, dims);
  tc.push(performance.now() - t);
  t = performance.now();
  await builtin.run(x, dims);
  tb.push(performance.now() - t);
}
console.log(`threads ${threads}, runs ${runs}, max |diff| ${diff.toExponential(2)}`);
console.log(
  `| whole model, median ms | ${median(tc).toFixed(1)} (custom LRN) | ${
    median(tb).toFixed(1)
  } (onnxruntime LRN) | ratio ${(median(tc) / median(tb)).toFixed(3)} |`,
);
Deno.exit(0);
