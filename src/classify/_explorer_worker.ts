/**
 * The explorer's worker: reads the loaded model's graph, answers its layer
 * table and first-layer filters, and runs a prefix of the graph (the layers
 * with feature maps, only their nodes and weights) for the tensors between
 * layers.
 *
 * A worker, not the server's thread: onnxruntime-web's wasm glue keeps each
 * run's state on one WebAssembly stack across awaits (see
 * src/runtime/wasm.ts), so a second session in the server's instance could
 * not run beside the classifier's. Here it has its own instance, with one
 * thread, and reading a 244 MB graph never blocks a request.
 *
 * Methods ({@linkcode ExplorerMethods}, over src/host/messages.ts, one call at
 * a time): `init { modelUrl, inputShape }` answers {@linkcode InitResult};
 * `features { input, tensor }` answers `{ data, dims }`.
 *
 * @module
 */
import * as ort from "onnxruntime-web";
import { decodeModel } from "../graph/onnx.ts";
import { type Handlers, movable, Moved, serveMessages } from "../host/mod.ts";
import { type GraphSummary, prefixModel, summarizeGraph } from "../graph/summary.ts";

/** What `init` answers. */
export type InitResult = GraphSummary;

/** What `features` answers: x: [C, H, W] of one layer, as float32. */
export interface FeaturesResult {
  data: Float32Array;
  dims: number[];
}

/** The explorer Worker's methods. */
export type ExplorerMethods = {
  init: { body: { modelUrl: string; inputShape: number[] }; result: InitResult };
  features: { body: { input: Float32Array; tensor: string }; result: FeaturesResult };
};

let inputName = "";
let inputDims: number[] = [];
let prefix: Uint8Array | undefined;
let session: Promise<ort.InferenceSession> | undefined;

async function init(modelUrl: string, inputShape: number[]): Promise<InitResult> {
  const model = decodeModel(await Deno.readFile(new URL(modelUrl)));
  const summary = summarizeGraph(model, inputShape);
  inputName = summary.input.name;
  inputDims = [1, ...summary.input.shape];
  // Every layer with feature maps up to the last one: for AlexNet conv1..pool5, 3.7 M weights.
  const maps = summary.layers.filter((l) => l.shape?.length === 3);
  if (maps.length > 0) {
    prefix = prefixModel(model, maps.map((l) => ({ name: l.tensor, dtype: l.dtype })));
  }
  return summary;
}

async function features(input: Float32Array, tensor: string): Promise<FeaturesResult> {
  if (!session) {
    if (!prefix) throw new RangeError("Cannot compute feature maps: the model has no such layer");
    const bytes = prefix;
    prefix = undefined; // The session keeps its own copy.
    ort.env.wasm.numThreads = 1;
    ort.env.logLevel = "error";
    session = ort.InferenceSession.create(bytes, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
  }
  const s = await session;
  const out = await s.run({ [inputName]: new ort.Tensor("float32", input, inputDims) }, [tensor]);
  const t = out[tensor];
  // uint8/int8 maps of quantized graphs: the display normalizes each map, so no dequantizing.
  const data = t.data instanceof Float32Array && t.data.byteLength === t.data.buffer.byteLength
    ? t.data
    : Float32Array.from(t.data as ArrayLike<number>);
  return { data, dims: t.dims.slice(1) };
}

const handlers: Handlers<ExplorerMethods> = {
  async init({ modelUrl, inputShape }) {
    const result = await init(modelUrl, inputShape);
    return new Moved(result, result.firstConv ? movable(result.firstConv.values) : []);
  },
  async features({ input, tensor }) {
    const result = await features(input, tensor);
    return new Moved(result, movable(result.data));
  },
};

// One call at a time: `features` needs `init` done, and one session run at a time.
serveMessages(handlers, { serial: true });
