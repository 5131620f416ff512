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
 * Messages: `{ id, type: "init", modelUrl, inputShape }` answers
 * {@linkcode InitResult}; `{ id, type: "features", input, tensor }` answers
 * `{ data, dims }`. Answers are `{ id, ok: true, result }` or
 * `{ id, ok: false, message }`.
 *
 * @module
 */
import * as ort from "onnxruntime-web";
import { decodeModel } from "../graph/onnx.ts";
import { SerialQueue } from "../host/serial_queue.ts";
import { type GraphSummary, prefixModel, summarizeGraph } from "../graph/summary.ts";

/** What `init` answers. */
export type InitResult = GraphSummary;

/** What `features` answers: x: [C, H, W] of one layer, as float32. */
export interface FeaturesResult {
  data: Float32Array;
  dims: number[];
}

interface Port {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent) => void) | null;
}
const port = self as unknown as Port;

let inputName = "";
let inputDims: number[] = [];
let prefix: Uint8Array | undefined;
let session: Promise<ort.InferenceSession> | undefined;
const queue = new SerialQueue();

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

async function handle(event: MessageEvent): Promise<void> {
  const { id, type } = event.data;
  try {
    if (type === "init") {
      const result = await init(event.data.modelUrl, event.data.inputShape);
      const transfer = result.firstConv ? [result.firstConv.values.buffer as ArrayBuffer] : [];
      port.postMessage({ id, ok: true, result }, transfer);
    } else if (type === "features") {
      const result = await features(event.data.input, event.data.tensor);
      port.postMessage({ id, ok: true, result }, [result.data.buffer as ArrayBuffer]);
    } else {
      throw new TypeError(`Cannot handle message type "${type}"`);
    }
  } catch (e) {
    port.postMessage({ id, ok: false, message: (e as Error).message ?? String(e) });
  }
}

// One message at a time: `features` needs `init` done, and one session run at a time.
port.onmessage = (event: MessageEvent) => void queue.run(() => handle(event));
