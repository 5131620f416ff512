/**
 * Server overhead: median inference time inside POST /predict (over a real
 * loopback socket) vs a bare onnxruntime-web session on the same model file,
 * same tensor, same thread count, interleaved in one process.
 *
 *   deno task bench:overhead [--runs 40] [--threads N]
 *
 * Prints a Markdown table for BENCHMARKS.md.
 */
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-web";
import { createApp, type ServerState } from "../src/api/mod.ts";
import { loadClassifier } from "../src/classify/load.ts";
import { decodeImage, preprocess } from "../src/image/mod.ts";
import { ensureSyntheticModel, loadModel } from "../src/model/store.ts";
import { availableCores } from "../src/runtime/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string" }, threads: { type: "string" } },
});
const runs = Number(values.runs ?? 40);
const threads = Number(values.threads ?? availableCores());

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const manifestUrl = await ensureSyntheticModel(1);
const classifier = await loadClassifier({ seed: 1, threads });
const model = await loadModel(manifestUrl);
const bare = await ort.InferenceSession.create(model.bytes, {
  executionProviders: ["wasm"],
  graphOptimizationLevel: "all",
});
const { preprocessing, input, output } = model.manifest;

const photo = await Deno.readFile(new URL("../tests/fixtures/chelsea.jpg", import.meta.url));
const tensor = preprocess(await decodeImage(photo), preprocessing);
const feeds = {
  [input.name]: new ort.Tensor("float32", tensor, [
    1,
    3,
    preprocessing.height,
    preprocessing.width,
  ]),
};

// Correctness first: the server's top-1 must match the bare session's.
const check = (await bare.run(feeds))[output.name].data as Float32Array;
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  createApp({ classifier } as ServerState).fetch,
);
const url = `http://127.0.0.1:${server.addr.port}/predict?top_k=1`;
const first = await (await fetch(url, { method: "POST", body: photo })).json();
const bareTop = check.indexOf(Math.max(...check));
if (first.predictions[0].index !== bareTop) {
  throw new Error(`Top-1 differs: server ${first.predictions[0].index}, bare ${bareTop}`);
}

const bareMs: number[] = [],
  serverInference: number[] = [],
  serverTotal: number[] = [],
  httpMs: number[] = [];
for (let i = 0; i < 5; i++) await bare.run(feeds); // warm-up
for (let i = 0; i < runs; i++) {
  let t = performance.now();
  await bare.run(feeds);
  bareMs.push(performance.now() - t);
  t = performance.now();
  const body = await (await fetch(url, { method: "POST", body: photo })).json();
  httpMs.push(performance.now() - t);
  serverInference.push(body.timings_ms.inference);
  serverTotal.push(body.timings_ms.total);
}
await server.shutdown();

const b = median(bareMs), s = median(serverInference);
console.log(
  `runs ${runs}, threads ${classifier.info.backend.threads}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}, onnxruntime-web ${ort.env.versions.web}\n`,
);
console.log("| measure | median ms |\n|---|---|");
console.log(`| bare onnxruntime-web session.run | ${b.toFixed(1)} |`);
console.log(`| /predict timings_ms.inference | ${s.toFixed(1)} |`);
console.log(
  `| /predict timings_ms.total (decode + preprocess + inference) | ${
    median(serverTotal).toFixed(1)
  } |`,
);
console.log(`| /predict round trip over loopback HTTP | ${median(httpMs).toFixed(1)} |`);
console.log(`\nserver inference / bare = ${(s / b).toFixed(3)} (goal <= 1.20)`);
Deno.exit(0);
