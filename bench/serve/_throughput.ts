/**
 * Inference throughput without HTTP, for one concurrency option, in its own
 * process (onnxruntime-web's thread count is process-wide). Part of
 * `deno task bench` (bench/serve_bench.ts); prints one JSON line.
 *
 *   deno run -A bench/serve/_throughput.ts --mode session --threads 2 --batches 1,4,8
 *   deno run -A bench/serve/_throughput.ts --mode pool --workers 2
 *
 * - `session`: one session, `--threads` intra-op threads, runs back to back
 *   at each batch size (rounds interleave the sizes): ms per image. Batch N
 *   back to back is the most dynamic micro-batching could get out of it.
 * - `pool`: `--workers` single-threaded sessions in Workers, `--workers`
 *   batch-1 runs kept in flight: ms per image (wall time / images).
 *
 * Correctness first: every option's scores for the test photo are compared
 * with a batch-1 run of the same option before timing.
 */
import { parseArgs } from "node:util";
import { decodeImage, preprocess } from "../../src/image/mod.ts";
import { topK } from "../../src/classify/mod.ts";
import { loadModel } from "../../src/model/store.ts";
import { createWorkerBackend } from "../../src/classify/worker_backend.ts";
import { createWasmBackend } from "../../src/runtime/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    mode: { type: "string", default: "session" },
    threads: { type: "string", default: "2" },
    workers: { type: "string", default: "2" },
    batches: { type: "string", default: "1" },
    rounds: { type: "string", default: "6" },
    manifest: { type: "string", default: "models/alexnet-synthetic.json" },
  },
});
const rounds = Number(values.rounds);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const model = await loadModel(new URL(values.manifest, `file://${Deno.cwd()}/`));
const io = { inputName: model.manifest.input.name, outputName: model.manifest.output.name };
const photo = await Deno.readFile(new URL("../../tests/fixtures/chelsea.jpg", import.meta.url));
const x = preprocess(await decodeImage(photo), model.manifest.preprocessing);
const item = [3, model.manifest.preprocessing.height, model.manifest.preprocessing.width];
const top5 = (scores: Float32Array) => topK(scores, 5, []).map((p) => p.index);

if (values.mode === "session") {
  const threads = Number(values.threads);
  const backend = await createWasmBackend(model.bytes, { ...io, eagerThreads: true, threads });
  const batches = values.batches.split(",").map(Number);
  const inputs = new Map(batches.map((n) => {
    const data = new Float32Array(n * x.length);
    for (let i = 0; i < n; i++) data.set(x, i * x.length);
    return [n, data];
  }));
  // Correctness: every row of a batch has batch 1's top-5.
  const want = top5((await backend.run(x, [1, ...item])).data);
  for (const n of batches) {
    const out = await backend.run(inputs.get(n)!.slice(), [n, ...item]);
    const k = out.data.length / n;
    for (let i = 0; i < n; i++) {
      const got = top5(out.data.subarray(i * k, (i + 1) * k));
      if (got.join() !== want.join()) {
        throw new Error(`batch ${n} row ${i}: top-5 ${got}, want ${want}`);
      }
    }
  }
  // onnxruntime-web's first runs in a process are slow (BENCHMARKS.md, "int8"): warm up.
  for (let i = 0; i < 15; i++) await backend.run(x, [1, ...item]);
  const times = new Map<number, number[]>(batches.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (const n of batches) {
      const t = performance.now();
      await backend.run(inputs.get(n)!.slice(), [n, ...item]);
      times.get(n)!.push((performance.now() - t) / n);
    }
  }
  const msPerImage = Object.fromEntries(batches.map((n) => [n, median(times.get(n)!)]));
  console.log(JSON.stringify({ mode: "session", threads, msPerImage }));
} else {
  const workers = Number(values.workers);
  const pool = await createWorkerBackend(model.bytes, { ...io, workers });
  const single = await createWasmBackend(model.bytes, { ...io, eagerThreads: true, threads: 1 });
  const want = top5((await single.run(x, [1, ...item])).data);
  await single.release();
  const got = top5((await pool.run(x.slice(), [1, ...item])).data);
  if (got.join() !== want.join()) throw new Error(`pool top-5 ${got}, want ${want}`);
  const burst = async (images: number) => {
    let next = 0;
    const lane = async () => {
      while (next++ < images) await pool.run(x.slice(), [1, ...item]);
    };
    const t = performance.now();
    await Promise.all(Array.from({ length: workers }, lane));
    return (performance.now() - t) / images;
  };
  await burst(15 * workers); // warm-up
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) times.push(await burst(4 * workers));
  console.log(JSON.stringify({ mode: "pool", workers, msPerImage: { 1: median(times) } }));
  await pool.release();
}
Deno.exit(0);
