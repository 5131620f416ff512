/**
 * WebGPU vs wasm, side by side in one process: the synthetic AlexNet on
 * onnxruntime-web's wasm backend and on our webgpu backend (LRN on our WASM
 * kernel between GPU parts, or on onnxruntime's CPU LRN inside one GPU
 * session), fp32 and the int8 file (dequantized for the GPU).
 *
 *   deno run -A bench/webgpu_bench.ts [--runs 5] [--threads N] [--batch 1] [--int8]
 *
 * Correctness first (top-5 and max |diff| against wasm fp32, or wasm int8 for
 * the int8 rows), then runs round-robin so the shared machine's load falls on
 * all alike. Prints the adapter: on a fallback (software) adapter such as
 * Mesa's lavapipe the GPU is emulated on the CPU and the numbers say nothing
 * about a real GPU. Needs models/alexnet-synthetic.onnx (`deno task model`);
 * `--int8` also models/alexnet-synthetic-int8.onnx (`deno task quantize`).
 */
import { parseArgs } from "node:util";
import { decodeImage, preprocess } from "../src/image/mod.ts";
import { loadModel } from "../src/model/store.ts";
import { availableCores, type Backend, createWasmBackend } from "../src/runtime/mod.ts";
import { createWebGpuBackend, describeAdapter } from "../src/runtime/webgpu.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string" },
    threads: { type: "string" },
    batch: { type: "string" },
    int8: { type: "boolean" },
  },
});
const runs = Number(values.runs ?? 5);
const threads = Number(values.threads ?? availableCores());
const batch = Number(values.batch ?? 1);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const top5 = (p: Float32Array) => [...p.keys()].sort((a, b) => p[b] - p[a]).slice(0, 5);

const adapter = await navigator.gpu?.requestAdapter();
if (!adapter) {
  console.error("No WebGPU adapter (on Linux: apt-get install mesa-vulkan-drivers)");
  Deno.exit(1);
}
const { description, fallback } = describeAdapter(adapter);
console.log(`adapter: ${description}${fallback ? " — FALLBACK (software) adapter" : ""}`);
console.log(`wasm threads: ${threads}; batch ${batch}; ${runs} timed runs each`);

const fp32 = await loadModel(new URL("../models/alexnet-synthetic.json", import.meta.url));
const io = { inputName: "data_0", outputName: "softmaxout_1", threads };
const photo = await Deno.readFile(new URL("../tests/fixtures/chelsea.jpg", import.meta.url));
const one = preprocess(await decodeImage(photo), fp32.manifest.preprocessing);
const x = new Float32Array(batch * one.length);
for (let i = 0; i < batch; i++) x.set(one, i * one.length);
const dims = [batch, 3, 224, 224];
const gpu = (bytes: Uint8Array, lrn: "custom" | "ort") =>
  createWebGpuBackend(bytes, { ...io, lrn, allowFallbackAdapter: true });

/** [label, backend, index of the contender it is checked against]. */
const contenders: [string, Backend, number][] = [
  ["wasm fp32 (lrn ort)", await createWasmBackend(fp32.bytes, { ...io, eagerThreads: true }), 0],
  ["webgpu fp32, LRN on our WASM kernel", await gpu(fp32.bytes, "custom"), 0],
  ["webgpu fp32, LRN on ort's CPU EP", await gpu(fp32.bytes, "ort"), 0],
];
if (values.int8) {
  const int8 = await loadModel(new URL("../models/alexnet-synthetic-int8.json", import.meta.url));
  const at = contenders.length;
  contenders.push(
    [
      "wasm int8 (our int8 kernels)",
      await createWasmBackend(int8.bytes, { ...io, eagerThreads: true }),
      at,
    ],
    ["webgpu int8 dequantized, LRN ours", await gpu(int8.bytes, "custom"), at],
  );
}

const outputs: Float32Array[] = [];
for (const [name, backend, ref] of contenders) {
  const out = (await backend.run(x, dims)).data;
  outputs.push(out);
  const want = outputs[ref];
  let diff = 0;
  for (let i = 0; i < out.length; i++) diff = Math.max(diff, Math.abs(out[i] - want[i]));
  const same = top5(out).join() === top5(want).join();
  console.log(
    `${name.padEnd(38)} top-5 ${top5(out).join(",")} max |diff| vs ${contenders[ref][0]}: ` +
      `${diff.toExponential(2)}${same ? "" : "  TOP-5 DIFFERS"}`,
  );
  if (!same && !name.includes("int8")) Deno.exit(1);
}

const times = contenders.map(() => [] as number[]);
for (const [, c] of contenders) await c.run(x, dims); // warm-up (first GPU runs compile shaders)
for (let i = 0; i < runs; i++) {
  for (const [j, [, c]] of contenders.entries()) {
    const t0 = performance.now();
    await c.run(x, dims);
    times[j].push(performance.now() - t0);
  }
}
const base = median(times[0]);
console.log(`\n| backend | median ms (batch ${batch}) | images/s | vs wasm fp32 |`);
console.log("| --- | --- | --- | --- |");
for (const [j, [name]] of contenders.entries()) {
  const m = median(times[j]);
  console.log(
    `| ${name} | ${m.toFixed(1)} | ${(1000 * batch / m).toFixed(2)} | ${(m / base).toFixed(2)} |`,
  );
}
for (const [, c] of contenders) await c.release();
