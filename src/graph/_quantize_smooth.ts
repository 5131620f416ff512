/**
 * Activation smoothing before quantization (the idea of SmoothQuant, Xiao et
 * al. 2022, and of cross-layer equalization, Nagel et al. 2019): where a layer
 * P feeds a layer C only through ReLU, MaxPool and Flatten, all positively
 * homogeneous per channel, multiplying P's output channel c by a_c > 0 and
 * dividing C's weights on that channel by a_c leaves the float function as it
 * was. One uint8 scale per tensor then covers channels of similar range
 * instead of a few wide ones, which lowers the activation rounding error; C's
 * weights take part of the range spread instead (per-channel int8 there).
 *
 * LRN is not homogeneous (its denominator sums squares across channels), so
 * tensors behind an LRN are left alone.
 *
 * @module
 */
import type onnxProto from "onnx-proto";
import { intAttr } from "./attributes.ts";
import { floatTensor, onnx, tensorValues } from "./onnx.ts";

type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;

/** Ops between P and C that commute with a positive per-channel scale. */
const HOMOGENEOUS = new Set(["Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten"]);

/** A tensor that can be smoothed: `producer` writes it (through homogeneous ops), `consumer` reads it. */
export interface SmoothPair {
  /** The consumer's data input: the tensor whose channels are equalized. */
  tensor: string;
  producer: NodeProto;
  consumer: NodeProto;
  /** The producer's output channels. */
  channels: number;
}

/** Conv, or Gemm with transB and no transA: the layouts whose output channel is weight axis 0. */
function isLayer(n: NodeProto, inits: Map<string, TensorProto>): boolean {
  const w = inits.get(n.input?.[1] ?? "");
  if (!w || w.dataType !== onnx.TensorProto.DataType.FLOAT || (n.domain ?? "") !== "") return false;
  if (n.opType === "Conv") return true;
  return n.opType === "Gemm" && intAttr(n, "transB", 0) === 1 && intAttr(n, "transA", 0) === 0;
}

/**
 * The producer/consumer pairs of a graph whose connecting tensor can be
 * smoothed: one path of Relu/pooling/Flatten, every tensor on it read by one
 * node only, none of them a graph output.
 *
 * @example
 * ```ts
 * smoothPairs(decodeModel(alexnet).graph!).map((p) => p.tensor);
 * // ["conv3_2", "conv4_2", "fc6_flat", "fc6_2", "fc7_2"]
 * ```
 */
export function smoothPairs(graph: onnxProto.onnx.IGraphProto): SmoothPair[] {
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const producers = new Map<string, NodeProto>();
  const readers = new Map<string, number>();
  for (const n of graph.node ?? []) {
    for (const o of n.output ?? []) producers.set(o, n);
    for (const i of n.input ?? []) readers.set(i, (readers.get(i) ?? 0) + 1);
  }
  const outputs = new Set((graph.output ?? []).map((o) => o.name));
  const pairs: SmoothPair[] = [];
  for (const consumer of graph.node ?? []) {
    if (!isLayer(consumer, inits)) continue;
    const tensor = consumer.input![0];
    let t = tensor, p = producers.get(t);
    while (p && HOMOGENEOUS.has(p.opType!) && readers.get(t) === 1 && !outputs.has(t)) {
      t = p.input![0];
      p = producers.get(t);
    }
    if (!p || !isLayer(p, inits) || readers.get(t) !== 1 || outputs.has(t)) continue;
    const channels = Number(inits.get(p.input![1])!.dims![0]);
    pairs.push({ tensor, producer: p, consumer, channels });
  }
  return pairs;
}

/**
 * Per-channel multipliers a_c = (max_c' m_c' / m_c)^alpha, from the
 * calibration maxima `channelMax` (m_c) of the tensor; channels that never
 * fire keep 1. alpha 0 changes nothing, 1 equalizes the ranges fully.
 *
 * @example
 * ```ts
 * smoothScales(new Float64Array([4, 1, 0]), 0.5); // [1, 2, 1]
 * ```
 */
export function smoothScales(channelMax: Float64Array, alpha: number): Float64Array {
  const top = Math.max(...channelMax);
  return channelMax.map((m) => (m > 0 ? (top / m) ** alpha : 1));
}

/**
 * Rewrites the pair's initializers in `graph` (new tensors, the old ones are
 * not modified): the producer's weights and bias times a_c per output channel,
 * the consumer's weights divided by a_c on the matching input channel
 * (Conv [M, C/g, kH, kW] with groups; Gemm [N, K] with K = C * spatial).
 *
 * @example
 * ```ts
 * const [pair] = smoothPairs(graph);
 * applySmoothing(graph, pair, smoothScales(channelMax, 0.5));
 * ```
 */
export function applySmoothing(
  graph: onnxProto.onnx.IGraphProto,
  pair: SmoothPair,
  scales: Float64Array,
): void {
  const index = new Map((graph.initializer ?? []).map((t, i) => [t.name!, i]));
  const get = (name: string) => graph.initializer![index.get(name)!];
  const put = (t: TensorProto, v: Float32Array) =>
    graph.initializer!.splice(index.get(t.name!)!, 1, floatTensor(t.name!, t.dims!.map(Number), v));
  const channels = pair.channels;

  // Producer: w [channels, ...], b [channels].
  const pw = get(pair.producer.input![1]);
  const w = Float32Array.from(tensorValues(pw));
  const per = w.length / channels;
  for (let c = 0; c < channels; c++) {
    for (let i = c * per; i < (c + 1) * per; i++) w[i] *= scales[c];
  }
  put(pw, w);
  const bName = pair.producer.input![2];
  if (bName && index.has(bName)) {
    const b = Float32Array.from(tensorValues(get(bName)), (v, c) => v * scales[c]);
    put(get(bName), b);
  }

  // Consumer: weights on input channel c divided by a_c.
  const cw = get(pair.consumer.input![1]);
  const v = Float32Array.from(tensorValues(cw));
  const dims = cw.dims!.map(Number);
  const rows = dims[0], perRow = v.length / rows;
  if (pair.consumer.opType === "Conv") {
    // v: [M, C/g, kH, kW]; output row m reads input channels of its group.
    const group = intAttr(pair.consumer, "group", 1), cg = dims[1], taps = perRow / cg;
    for (let m = 0; m < rows; m++) {
      const g = Math.floor(m / (rows / group));
      for (let c = 0; c < cg; c++) {
        const a = scales[g * cg + c];
        for (let k = 0; k < taps; k++) v[m * perRow + c * taps + k] /= a;
      }
    }
  } else {
    // v: [N, K], K = channels * spatial (Flatten of [C, H, W]).
    const spatial = perRow / channels;
    for (let m = 0; m < rows; m++) {
      for (let k = 0; k < perRow; k++) v[m * perRow + k] /= scales[Math.floor(k / spatial)];
    }
  }
  put(cw, v);
}
