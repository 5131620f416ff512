/**
 * Post-training static quantization of an fp32 ONNX classifier, in
 * TypeScript: per-channel symmetric int8 weights for Conv, Gemm and MatMul,
 * activation ranges calibrated on real images (min-max or percentile), QDQ
 * output. Everything else (LRN, pooling, Softmax) stays float.
 *
 * Layout written, per quantized node (the layout onnxruntime's QDQ
 * transformers recognize):
 *
 *   x -> QuantizeLinear(s_x, z_x) -> DequantizeLinear ----\
 *   W_int8 -> DequantizeLinear(s_w[c], axis) -----------> Conv/Gemm -> y -> Q -> DQ -> ...
 *   b_int32 -> DequantizeLinear(s_x * s_w[c], axis 0) ---/
 *
 * Activations are uint8 asymmetric per tensor; weights int8 symmetric per
 * output channel (zero point 0, range +-127); biases int32 with scale
 * s_x * s_w[c], as QLinearConv expects.
 *
 * Layers named in `weightOnly` (by default all of them) keep a float input:
 *
 *   x (float) ----------------------------------------> Gemm/Conv -> ...
 *   W_int8 -> DequantizeLinear(s_w[c], axis) --------/
 *   b (float, bias-corrected) ----------------------/
 *
 * which onnxruntime runs as a float layer on the dequantized weights, and our
 * kernels as int8 weights times the input rounded per call to up to int16
 * (src/runtime/qdq_ops.ts).
 *
 * By default, before writing: activation smoothing (channel ranges moved
 * between layers joined by ReLU/pooling only, the float function unchanged;
 * _quantize_smooth.ts), GPTQ weight rounding on the calibration inputs
 * (_quantize_gptq.ts), then bias correction of the remaining mean shift.
 *
 * @module
 */
import type onnxProto from "onnx-proto";
import { intAttr, intsAttr } from "./attributes.ts";
import { decodeModel, node, onnx, OPSET, tensorValues } from "./onnx.ts";
import { applySmoothing, smoothPairs, smoothScales } from "./_quantize_smooth.ts";
import { type ConvGeometry, gptqRound, im2colRows } from "./_quantize_gptq.ts";
import { mulberry32 } from "./weights.ts";

type ModelProto = onnxProto.onnx.ModelProto;
type TensorProto = onnxProto.onnx.ITensorProto;
const DT = onnx.TensorProto.DataType;

/** How activation ranges are taken from the calibration set. */
export type CalibrationMethod = "minmax" | "percentile";

/** How weights are rounded to int8 (see {@linkcode QuantizeOptions.weightRounding}). */
export type WeightRounding = "nearest" | "gptq";

/**
 * The defaults of {@linkcode quantizeModel} and `deno task quantize`, chosen by
 * bench/int8_agreement.ts (docs/int8.md, "Agreement with fp32").
 */
export const DEFAULT_QUANTIZE: {
  method: CalibrationMethod;
  weightRounding: WeightRounding;
  smoothing: number;
  weightOnly: readonly string[];
} = { method: "minmax", weightRounding: "gptq", smoothing: 0.5, weightOnly: ["Conv", "Gemm"] };

/** Options of {@linkcode quantizeModel}. */
export interface QuantizeOptions {
  /** Range estimator (default minmax). */
  method?: CalibrationMethod;
  /** For `percentile`: the share of values inside the range, in percent (default 99.999). */
  percentile?: number;
  /**
   * Also put Q/DQ on each layer's output (before its ReLU) when it flows into
   * another quantized layer, the layout onnxruntime fuses into QLinearConv /
   * QGemm. Default false: it rounds twice between layers and lowers agreement
   * with fp32 (docs/int8.md), and our own kernels do not need it.
   */
  quantizeOutputs?: boolean;
  /**
   * With `quantizeOutputs`: put the output Q/DQ after the layer's ReLU (when a
   * ReLU is its only consumer) instead of before it. The range then starts at
   * 0, so onnxruntime drops the ReLU (ReluQuantFusion) and fuses
   * Conv -> QLinearConv with no float ops between layers. Default false.
   */
  outputsAfterRelu?: boolean;
  /** Activation type: uint8 (default) or int8, both asymmetric per tensor. */
  activationType?: "uint8" | "int8";
  /**
   * Activations whose calibrated range starts at 0 (after a ReLU, LRN or MaxPool of one)
   * as int8 with zero point 0 and scale max / 127: values 0..127, half the uint8 grid's
   * resolution, but 7-bit operands for relaxed SIMD's `i32x4.relaxed_dot_i8x16_i7x16_add_s`
   * (wasm/README.md). Others keep `activationType`. Default false.
   */
  nonNegativeInt8?: boolean;
  /** Weight type: int8 symmetric (default) or uint8 with zero point 128. */
  weightType?: "int8" | "uint8";
  /**
   * Weight bits: 8 (default, q in -127..127) or 7 (q in -63..63, onnxruntime's
   * `reduce_range`): w + 64 then fits the 7-bit operand of relaxed SIMD's
   * `i32x4.relaxed_dot_i8x16_i7x16_add_s` (wasm/README.md). Still stored as int8.
   */
  weightBits?: 7 | 8;
  /** One weight scale per output channel (default true) or one per tensor. */
  perChannel?: boolean;
  /**
   * Activation smoothing strength alpha in [0, 1] (default 0.5; 0 is off): where a
   * layer feeds the next through ReLU/MaxPool/Flatten only, channel c of the
   * connecting tensor is multiplied by (max range / range_c)^alpha and the
   * next layer's weights divided by the same, which leaves the float model's
   * function unchanged (_quantize_smooth.ts).
   */
  smoothing?: number;
  /**
   * How weights are rounded to int8: `nearest` (each weight on its own) or
   * `gptq` (default): columns rounded in turn, each one's error
   * moved onto the columns not yet rounded so that the layer's output on the
   * calibration inputs changes least (_quantize_gptq.ts). Conv and
   * Gemm (transB) only; MatMul weights are rounded to nearest.
   */
  weightRounding?: WeightRounding;
  /**
   * Layers that get int8 weights but keep a float input (weight-only: no Q/DQ on
   * their input, a float bias), by op type (`"Gemm"`, `"Conv"`), node name or output
   * name. Default `["Conv", "Gemm"]`, every layer: the eight per-tensor uint8
   * activation roundings were most of the int8 model's error, and our kernels round
   * a weight-only layer's input per call on its own range to up to int16 for the same
   * int8 x int16 multiply-adds (docs/int8.md, "Agreement with fp32"). Smoothing
   * leaves their inputs alone. `[]` quantizes every layer's input to uint8 (what
   * onnxruntime fuses into QLinearConv / QGemm).
   */
  weightOnly?: readonly string[];
  /** For `gptq`: calibration rows per layer (im2col rows for Conv; default 256). */
  gptqRows?: number;
  /** For `gptq`: the ridge added to X^T X, as a share of its mean diagonal (default 0.01). */
  gptqDamp?: number;
  /** Called after each calibration image of each pass. */
  onProgress?: (done: number, total: number, pass: string) => void;
}

/** Runs a model (bytes) on one input and returns the named float outputs. */
export type Evaluate = (
  model: Uint8Array,
  input: Float32Array,
  outputs: string[],
) => Promise<Record<string, Float32Array>>;

/** The quantization parameters of one activation tensor. */
export interface ActivationRange {
  min: number;
  max: number;
  scale: number;
  zeroPoint: number;
  /** Stored type of the quantized tensor when it differs from `activationType`. */
  type?: "int8";
}

/** What {@linkcode quantizeModel} returns. */
export interface QuantizeResult {
  /** The QDQ model. */
  bytes: Uint8Array;
  /** Calibrated ranges by tensor name. */
  ranges: Record<string, ActivationRange>;
  /** Names of the nodes whose weights were quantized. */
  quantized: string[];
  /** Those of them whose input stayed float (weight-only int8). */
  weightOnly: string[];
}

const TARGETS = new Set(["Conv", "Gemm", "MatMul"]);

/** Reads a float32 initializer's values (a copy). */
export function floatValues(t: TensorProto): Float32Array {
  if (t.dataType !== DT.FLOAT) throw new TypeError(`Cannot quantize ${t.name}: it is not float32`);
  return tensorValues(t) as Float32Array;
}

/**
 * uint8 asymmetric parameters for a range; the range always includes 0 so
 * that zero (padding, ReLU) is exact.
 *
 * @example
 * ```ts
 * uint8Params(0, 6); // { scale: 6 / 255, zeroPoint: 0, ... }
 * ```
 */
export function uint8Params(min: number, max: number): ActivationRange {
  const lo = Math.min(0, min), hi = Math.max(0, max);
  // Stored as float32 in the model, so the zero point is derived from that value.
  const scale = hi > lo ? Math.fround((hi - lo) / 255) : 1;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  return { min, max, scale, zeroPoint };
}

/**
 * Quantizes weights symmetric per channel along `axis`: q = clamp(round(w / s), -qMax, qMax)
 * with s = max|w| / qMax over the channel (qMax 127 by default; 63 for 7-bit weights).
 * w: any shape; `channels` = dims[axis], `inner` = product of dims after axis.
 *
 * @example
 * ```ts
 * const { q, scales } = quantizePerChannel(new Float32Array([1, -2, 0.5, 0.25]), 2, 2);
 * // scales [1/127, 2/127]... per row of 2
 * ```
 */
export function quantizePerChannel(
  w: Float32Array,
  channels: number,
  inner: number,
  qMax = 127,
): { q: Int8Array; scales: Float32Array } {
  const outer = w.length / (channels * inner);
  const scales = new Float32Array(channels);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      let m = scales[c] * qMax;
      for (let i = 0; i < inner; i++) m = Math.max(m, Math.abs(w[base + i]));
      scales[c] = m / qMax;
    }
  }
  for (let c = 0; c < channels; c++) if (scales[c] === 0) scales[c] = 1;
  const q = new Int8Array(w.length);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      const s = Math.fround(scales[c]);
      for (let i = 0; i < inner; i++) {
        q[base + i] = Math.max(-qMax, Math.min(qMax, Math.round(w[base + i] / s)));
      }
    }
  }
  return { q, scales };
}

/**
 * Bias correction (Nagel et al., "Data-Free Quantization", 2019): rounding the
 * weights shifts each output's mean by sum(dW * E[x]); subtracting that shift
 * from the bias removes the systematic part of the error. `mean` is the
 * calibration mean of each input channel (zero padding is ignored).
 * w, q: Conv [M, C/g, kH, kW] (axis 0), Gemm [N, K] (axis 0) or [K, N] (axis 1).
 */
export function biasCorrect(
  bias: Float32Array,
  w: Float32Array,
  q: Int8Array,
  scales: Float32Array,
  dims: number[],
  axis: number,
  mean: Float64Array,
  group: number,
): void {
  const out = dims[axis];
  if (axis === 0) {
    const perOut = w.length / out; // C/g * kH * kW, or K
    const cg = dims.length === 4 ? dims[1] : perOut;
    const k = perOut / cg;
    for (let o = 0; o < out; o++) {
      const g = Math.floor(o / (out / group));
      const s = Math.fround(scales[o]);
      let shift = 0;
      for (let c = 0; c < cg; c++) {
        let dw = 0;
        for (let j = 0; j < k; j++) {
          const i = o * perOut + c * k + j;
          dw += q[i] * s - w[i];
        }
        shift += dw * mean[g * cg + c];
      }
      bias[o] -= shift;
    }
  } else {
    const inner = w.length / out; // K rows of N
    for (let o = 0; o < out; o++) {
      const s = Math.fround(scales[o]);
      let shift = 0;
      for (let i = 0; i < inner; i++) shift += (q[i * out + o] * s - w[i * out + o]) * mean[i];
      bias[o] -= shift;
    }
  }
}

/** Running histogram of one tensor for percentile ranges. */
class Histogram {
  readonly bins = new Float64Array(4096);
  constructor(readonly lo: number, readonly hi: number) {}
  add(values: Float32Array) {
    const { lo, hi, bins } = this;
    const k = (bins.length - 1) / (hi - lo || 1);
    for (const v of values) bins[Math.round((v - lo) * k)]++;
  }
  /** The value below which `p` percent of the mass lies (and above which for the low end). */
  quantile(p: number): number {
    const total = this.bins.reduce((a, b) => a + b, 0);
    let acc = 0;
    for (let i = 0; i < this.bins.length; i++) {
      acc += this.bins[i];
      if (acc >= total * p) return this.lo + (i / (this.bins.length - 1)) * (this.hi - this.lo);
    }
    return this.hi;
  }
}

/** `model` serialized with `tensors` added as graph outputs (for calibration); `model` is left as it was. */
function withOutputs(model: ModelProto, tensors: string[]): Uint8Array {
  const outputs = model.graph!.output!;
  const before = outputs.length;
  const have = new Set(outputs.map((o) => o.name));
  for (const t of tensors) {
    if (!have.has(t)) {
      outputs.push(
        onnx.ValueInfoProto.create({ name: t, type: { tensorType: { elemType: DT.FLOAT } } }),
      );
    }
  }
  try {
    return onnx.ModelProto.encode(model).finish();
  } finally {
    outputs.length = before;
  }
}

/** Smooths `model`'s smoothable tensors (in place) with ranges from a calibration pass. */
async function smooth(
  model: ModelProto,
  inputs: Float32Array[],
  evaluate: Evaluate,
  alpha: number,
  onProgress?: (done: number, total: number, pass: string) => void,
  skip: (consumer: onnxProto.onnx.INodeProto) => boolean = () => false,
): Promise<void> {
  // A float input gains nothing from smoothing; its layer's weights would only lose.
  const pairs = smoothPairs(model.graph!).filter((p) => !skip(p.consumer));
  if (pairs.length === 0) return;
  const names = pairs.map((p) => p.tensor);
  const probe = withOutputs(model, names);
  // Per-channel maxima; t: [1, C, H, W] or [1, C * spatial] (Flatten keeps channel-major order).
  const maxima = pairs.map((p) => new Float64Array(p.channels));
  for (const [i, x] of inputs.entries()) {
    const out = await evaluate(probe, x, names);
    for (const [j, p] of pairs.entries()) {
      const v = out[p.tensor], stride = v.length / p.channels, m = maxima[j];
      for (let k = 0; k < v.length; k++) {
        const c = Math.floor(k / stride);
        if (v[k] > m[c]) m[c] = v[k];
      }
    }
    onProgress?.(i + 1, inputs.length, "smoothing");
  }
  for (const [j, p] of pairs.entries()) {
    applySmoothing(model.graph!, p, smoothScales(maxima[j], alpha));
  }
}

/**
 * Calibrates activation ranges on `inputs` and writes the QDQ model.
 *
 * @example
 * ```ts
 * const { bytes } = await quantizeModel(fp32, tensors, evaluate, { method: "percentile" });
 * ```
 */
export async function quantizeModel(
  fp32: Uint8Array,
  inputs: Float32Array[],
  evaluate: Evaluate,
  options: QuantizeOptions = {},
): Promise<QuantizeResult> {
  const s = settingsOf(options);
  if (inputs.length === 0) throw new RangeError("Cannot calibrate: no calibration images");
  const model = decodeModel(fp32);
  if (s.smoothing > 0) {
    await smooth(model, inputs, evaluate, s.smoothing, s.onProgress, s.isWeightOnly);
  }
  const plan = planLayers(model.graph!, s);
  const stats = await observeMinMax(model, plan, inputs, evaluate, s);
  if (s.method === "percentile") await clipPercentile(stats, plan.tensors, inputs, evaluate, s);
  const ranges = activationRanges(plan.tensors, stats, s);
  const written = writeQdq(model.graph!, plan, stats, ranges, inputs.length, s);
  return {
    bytes: encodeQuantized(model, written.nodes, written.initializers),
    ranges,
    quantized: plan.targets.map((n) => n.name ?? n.output![0]),
    weightOnly: [...plan.weightOnly].map((n) => n.name ?? n.output![0]),
  };
}

type NodeProto = onnxProto.onnx.INodeProto;
type Progress = (done: number, total: number, pass: string) => void;

/** {@linkcode QuantizeOptions} with every default filled in, worked out once. */
interface Settings {
  method: CalibrationMethod;
  percentile: number;
  quantizeOutputs: boolean;
  outputsAfterRelu: boolean;
  activationType: "uint8" | "int8";
  nonNegativeInt8: boolean;
  weightType: "int8" | "uint8";
  /** The largest |q| of a weight: 127 (8 bits) or 63 (7 bits). */
  weightMax: number;
  perChannel: boolean;
  smoothing: number;
  weightRounding: WeightRounding;
  gptqRows: number;
  gptqDamp: number;
  onProgress?: Progress;
  /** Whether a layer keeps its float input (`weightOnly` names its op, name or output). */
  isWeightOnly: (n: NodeProto) => boolean;
}

function settingsOf(options: QuantizeOptions): Settings {
  const names = new Set(options.weightOnly ?? DEFAULT_QUANTIZE.weightOnly);
  return {
    method: options.method ?? DEFAULT_QUANTIZE.method,
    percentile: options.percentile ?? 99.999,
    quantizeOutputs: options.quantizeOutputs ?? false,
    outputsAfterRelu: options.outputsAfterRelu ?? false,
    activationType: options.activationType ?? "uint8",
    nonNegativeInt8: options.nonNegativeInt8 ?? false,
    weightType: options.weightType ?? "int8",
    weightMax: options.weightBits === 7 ? 63 : 127,
    perChannel: options.perChannel ?? true,
    smoothing: options.smoothing ?? DEFAULT_QUANTIZE.smoothing,
    weightRounding: options.weightRounding ?? DEFAULT_QUANTIZE.weightRounding,
    gptqRows: options.gptqRows ?? 256,
    gptqDamp: options.gptqDamp ?? 0.01,
    onProgress: options.onProgress,
    isWeightOnly: (n) =>
      names.has(n.opType!) || names.has(n.name ?? "") || names.has(n.output?.[0] ?? ""),
  };
}

/** Which layers get int8 weights, and which tensors get Q/DQ or are observed. */
interface LayerPlan {
  inits: Map<string, TensorProto>;
  /** Conv, Gemm and MatMul nodes with float32 constant weights, in graph order. */
  targets: NodeProto[];
  /** Those of them whose input stays float. */
  weightOnly: Set<NodeProto>;
  /** Tensors that get Q/DQ. */
  tensors: string[];
  /** Tensors calibrated: `tensors` and every layer's input (bias correction, GPTQ). */
  observed: string[];
}

function planLayers(graph: onnxProto.onnx.IGraphProto, s: Settings): LayerPlan {
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const targets = (graph.node ?? []).filter((n) =>
    (n.domain ?? "") === "" && TARGETS.has(n.opType!) && inits.has(n.input![1]) &&
    inits.get(n.input![1])!.dataType === DT.FLOAT
  );
  // Activations: every target's data input and output.
  // An output is quantized (if asked) only when it flows into another quantized
  // layer: rounding the last layer's logits (fc8) would only add error before Softmax.
  const consumers = new Map<string, NodeProto[]>();
  for (const n of graph.node ?? []) {
    for (const i of n.input ?? []) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  // Layers whose input gets Q/DQ; the weight-only ones read their float input.
  const weightOnly = new Set(targets.filter(s.isWeightOnly));
  const targetSet = new Set(targets.filter((n) => !weightOnly.has(n)));
  const feedsTarget = (tensor: string, seen = new Set<string>()): boolean =>
    (consumers.get(tensor) ?? []).some((n) =>
      targetSet.has(n) ||
      (n.output ?? []).some((o) => !seen.has(o) && (seen.add(o), feedsTarget(o, seen)))
    );
  // The tensor whose Q/DQ stands for a layer's output: its ReLU's output if asked and possible.
  const outputOf = (n: NodeProto): string => {
    const next = consumers.get(n.output![0]) ?? [];
    return s.outputsAfterRelu && next.length === 1 && next[0].opType === "Relu"
      ? next[0].output![0]
      : n.output![0];
  };
  const tensors = [
    ...new Set([...targetSet].flatMap((n) => [
      n.input![0],
      ...(s.quantizeOutputs && feedsTarget(n.output![0]) ? [outputOf(n)] : []),
    ])),
  ];
  const observed = [...new Set([...tensors, ...targets.map((n) => n.input![0])])];
  return { inits, targets, weightOnly, tensors, observed };
}

/** What calibration saw of the observed tensors. */
interface Observed {
  /** `model` with the observed tensors as outputs (shares its initializers). */
  calib: Uint8Array;
  mins: Map<string, number>;
  maxs: Map<string, number>;
  /** Per-channel sums over the images of each layer input's channel means. */
  sums: Map<string, Float64Array>;
  /** GPTQ: calibration rows of each Conv/Gemm(transB) input, per group. */
  rowsOf: Map<NodeProto, number[][][]>;
}

/** Pass 1: min/max of every observed tensor, channel means, GPTQ rows. */
async function observeMinMax(
  model: ModelProto,
  plan: LayerPlan,
  inputs: Float32Array[],
  evaluate: Evaluate,
  s: Settings,
): Promise<Observed> {
  const { observed, targets } = plan;
  const calib = withOutputs(model, observed);
  const sums = new Map([...inputChannels(plan)].map(([t, c]) => [t, new Float64Array(c)]));
  const rows = gptqSampler(plan, s.gptqRows, inputs.length);
  const mins = new Map(observed.map((t) => [t, Infinity]));
  const maxs = new Map(observed.map((t) => [t, -Infinity]));
  for (const [i, x] of inputs.entries()) {
    const out = await evaluate(calib, x, observed);
    for (const t of observed) {
      let lo = mins.get(t)!, hi = maxs.get(t)!;
      for (const v of out[t]) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      mins.set(t, lo);
      maxs.set(t, hi);
      const sum = sums.get(t);
      if (sum) addChannelMeans(out[t], sum);
    }
    if (s.weightRounding === "gptq") { for (const n of targets) rows.sample(n, out[n.input![0]]); }
    s.onProgress?.(i + 1, inputs.length, "min-max");
  }
  return { calib, mins, maxs, sums, rowsOf: rows.rowsOf };
}

/** Input channels of each layer's data input: x: [1, C, H, W] or [1, K]. */
function inputChannels({ targets, inits }: LayerPlan): Map<string, number> {
  const inChannels = new Map<string, number>();
  for (const n of targets) {
    const dims = (inits.get(n.input![1])!.dims ?? []).map(Number);
    const c = n.opType === "Conv"
      ? dims[1] * intAttr(n, "group", 1)
      : n.opType === "Gemm" && intAttr(n, "transB", 0) === 1
      ? dims[1]
      : dims[0];
    inChannels.set(n.input![0], c);
  }
  return inChannels;
}

/** sum[c] += the mean of channel c of `values` (channel-major). */
function addChannelMeans(values: Float32Array, sum: Float64Array): void {
  const stride = values.length / sum.length;
  for (let c = 0; c < sum.length; c++) {
    let acc = 0;
    for (let k = c * stride; k < (c + 1) * stride; k++) acc += values[k];
    sum[c] += acc / stride;
  }
}

/** Collects GPTQ's calibration rows of each Conv/Gemm(transB) input, per group. */
function gptqSampler(plan: LayerPlan, gptqRows: number, images: number) {
  const rowsOf = new Map<NodeProto, number[][][]>();
  const random = mulberry32(0x67707471);
  const sample = (n: NodeProto, x: Float32Array) => {
    const dims = (plan.inits.get(n.input![1])!.dims ?? []).map(Number);
    if (n.opType === "Gemm" && intAttr(n, "transB", 0) === 1 && x.length === dims[1]) {
      if (!rowsOf.has(n)) rowsOf.set(n, [[]]);
      rowsOf.get(n)![0].push(Array.from(x));
    } else if (n.opType === "Conv" && dims.length === 4) {
      const geo = convGeometry(n, dims, x.length);
      if (!geo) return; // not a square [1, C, H, W]: rounded to nearest
      const { height: h, width: w, pads, strides } = geo;
      const outH = Math.floor((h + pads[0] + pads[2] - dims[2]) / strides[0]) + 1;
      const outW = Math.floor((w + pads[1] + pads[3] - dims[3]) / strides[1]) + 1;
      const per = Math.min(outH * outW, Math.ceil(gptqRows / images));
      const positions = Array.from({ length: per }, () => Math.floor(random() * outH * outW));
      if (!rowsOf.has(n)) rowsOf.set(n, Array.from({ length: geo.group }, () => []));
      im2colRows(x, geo, positions, rowsOf.get(n)!);
    }
  };
  return { rowsOf, sample };
}

/** A Conv's input geometry for im2col, when its input x is a square [1, C, H, W]. */
function convGeometry(n: NodeProto, dims: number[], size: number): ConvGeometry | undefined {
  const group = intAttr(n, "group", 1), channels = dims[1] * group;
  const side = Math.sqrt(size / channels);
  if (!Number.isInteger(side)) return undefined;
  return {
    channels,
    height: side,
    width: side,
    kernel: [dims[2], dims[3]],
    strides: (intsAttr(n, "strides") ?? [1, 1]) as [number, number],
    pads: (intsAttr(n, "pads") ?? [0, 0, 0, 0]) as [number, number, number, number],
    group,
  };
}

/** Pass 2 (percentile): histograms over the min-max range, then clip the tails. */
async function clipPercentile(
  stats: Observed,
  tensors: string[],
  inputs: Float32Array[],
  evaluate: Evaluate,
  s: Settings,
): Promise<void> {
  const { mins, maxs } = stats;
  const hists = new Map(tensors.map((t) => [t, new Histogram(mins.get(t)!, maxs.get(t)!)]));
  for (const [i, x] of inputs.entries()) {
    const out = await evaluate(stats.calib, x, tensors);
    for (const t of tensors) hists.get(t)!.add(out[t]);
    s.onProgress?.(i + 1, inputs.length, "percentile");
  }
  const tail = (100 - s.percentile) / 100;
  for (const t of tensors) {
    const h = hists.get(t)!;
    mins.set(t, Math.min(0, h.quantile(tail)));
    maxs.set(t, h.quantile(1 - tail));
  }
}

function activationRanges(
  tensors: string[],
  { mins, maxs }: Observed,
  s: Settings,
): Record<string, ActivationRange> {
  const ranges: Record<string, ActivationRange> = {};
  for (const t of tensors) {
    const [min, max] = [mins.get(t)!, maxs.get(t)!];
    if (s.nonNegativeInt8 && min >= 0) {
      ranges[t] = { ...nonNegativeInt8Params(min, max), type: "int8" };
      continue;
    }
    const r = uint8Params(min, max);
    // int8 is the same grid shifted by 128: q_s8 = q_u8 - 128.
    ranges[t] = s.activationType === "int8" ? { ...r, zeroPoint: r.zeroPoint - 128 } : r;
  }
  return ranges;
}

/**
 * int8 parameters for a range inside [0, max]: zero point 0, so every value
 * rounds to 0..127 (7 bits).
 *
 * @example
 * ```ts
 * nonNegativeInt8Params(0, 6); // { scale: 6 / 127, zeroPoint: 0, ... }
 * ```
 */
export function nonNegativeInt8Params(min: number, max: number): ActivationRange {
  const scale = max > 0 ? Math.fround(max / 127) : 1;
  return { min, max, scale, zeroPoint: 0 };
}

/**
 * Rewrite: Q/DQ after each calibrated tensor; consumers read the DQ output. Float
 * weights go; a bias stays float when its layer's input is not quantized.
 */
function writeQdq(
  graph: onnxProto.onnx.IGraphProto,
  plan: LayerPlan,
  stats: Observed,
  ranges: Record<string, ActivationRange>,
  images: number,
  s: Settings,
): { nodes: NodeProto[]; initializers: TensorProto[] } {
  const { targets, weightOnly } = plan;
  const quantizedInput = (n: NodeProto) => !weightOnly.has(n) && ranges[n.input![0]] !== undefined;
  const initializers: TensorProto[] = (graph.initializer ?? []).filter((t) =>
    !targets.some((n) => n.input![1] === t.name || (n.input![2] === t.name && quantizedInput(n)))
  );
  const qdqNodes = new Map<string, NodeProto[]>();
  for (const t of plan.tensors) {
    qdqNodes.set(t, activationQdq(t, ranges[t], ranges[t].type ?? s.activationType, initializers));
  }
  const weightNodes = new Map<NodeProto, NodeProto[]>();
  for (const n of targets) {
    const layer = quantizeLayer(n, plan, stats.rowsOf.get(n), s);
    const extra = [weightQdq(n.input![1], layer, s.weightType, initializers)];
    const mean = stats.sums.get(n.input![0])?.map((v) => v / images);
    const bName = n.input![2];
    if (bName && plan.inits.has(bName) && n.opType !== "MatMul") {
      const b = correctedBias(plan.inits.get(bName)!, layer, mean);
      if (!quantizedInput(n)) replaceFloatBias(bName, b, initializers);
      else extra.push(int32BiasQdq(bName, b, ranges[n.input![0]].scale, layer, initializers));
    }
    weightNodes.set(n, extra);
  }
  return { nodes: orderNodes(graph, qdqNodes, weightNodes, weightOnly), initializers };
}

/** Q -> DQ of activation `t` (its scale and zero point pushed to `initializers`). */
function activationQdq(
  t: string,
  r: ActivationRange,
  activationType: "uint8" | "int8",
  initializers: TensorProto[],
): NodeProto[] {
  initializers.push({ name: `${t}_scale`, dims: [], dataType: DT.FLOAT, floatData: [r.scale] });
  initializers.push({
    name: `${t}_zero_point`,
    dims: [],
    dataType: activationType === "int8" ? DT.INT8 : DT.UINT8,
    int32Data: [r.zeroPoint],
  });
  return [
    node("QuantizeLinear", [t, `${t}_scale`, `${t}_zero_point`], [`${t}_quantized`]),
    node("DequantizeLinear", [`${t}_quantized`, `${t}_scale`, `${t}_zero_point`], [
      `${t}_dequantized`,
    ]),
  ];
}

/** One layer's weights rounded to int8, with what the bias and the writer need. */
interface QuantizedLayer {
  /** The float weights w and their dims. */
  wf: Float32Array;
  dims: number[];
  /** The output-channel axis of w, the channels along it and the values per channel. */
  axis: number;
  channels: number;
  inner: number;
  q: Int8Array;
  /** Scales as stored (one per channel, or one per tensor). */
  stored: Float32Array;
  /** One scale per channel (the per-tensor one repeated). */
  scales: Float32Array;
  perTensor: boolean;
  group: number;
}

/** Rounds a layer's weights to int8: to nearest, or GPTQ per group when rows were sampled. */
function quantizeLayer(
  n: NodeProto,
  plan: LayerPlan,
  rows: number[][][] | undefined,
  s: Settings,
): QuantizedLayer {
  const w = plan.inits.get(n.input![1])!;
  const dims = (w.dims ?? []).map(Number);
  // Output channels: Conv [M, C/g, kH, kW] axis 0; Gemm B [N, K] with transB, else [K, N]; MatMul [K, N].
  const axis = n.opType === "Conv"
    ? 0
    : n.opType === "Gemm" && intAttr(n, "transB", 0) === 1
    ? 0
    : 1;
  const channels = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const wf = floatValues(w);
  // Per tensor: one scale over all of w, repeated per channel for the bias below.
  const perTensor = !s.perChannel;
  const wq = quantizePerChannel(
    wf,
    perTensor ? 1 : channels,
    perTensor ? wf.length : inner,
    s.weightMax,
  );
  const scales = perTensor ? new Float32Array(channels).fill(wq.scales[0]) : wq.scales;
  let q = wq.q;
  if (rows && axis === 0) {
    q = gptqLayer(wf, channels, inner, scales, rows, s);
    s.onProgress?.(plan.targets.indexOf(n) + 1, plan.targets.length, "gptq");
  }
  const group = n.opType === "Conv" ? intAttr(n, "group", 1) : 1;
  return { wf, dims, axis, channels, inner, q, stored: wq.scales, scales, perTensor, group };
}

/** GPTQ per group: rows [M/g, K] of the weights, each group with its own inputs. */
function gptqLayer(
  wf: Float32Array,
  channels: number,
  inner: number,
  scales: Float32Array,
  rows: number[][][],
  s: Pick<Settings, "gptqDamp" | "weightMax">,
): Int8Array {
  const per = channels / rows.length;
  const q = new Int8Array(wf.length);
  for (const [g, xs] of rows.entries()) {
    const x = new Float64Array(xs.length * inner);
    xs.forEach((r, i) => x.set(r, i * inner));
    const part = gptqRound(
      wf.subarray(g * per * inner, (g + 1) * per * inner),
      per,
      inner,
      scales.subarray(g * per, (g + 1) * per),
      x,
      xs.length,
      s.gptqDamp,
      s.weightMax,
    );
    q.set(part, g * per * inner);
  }
  return q;
}

/** The int8 (or uint8 + 128) weights, scales and zero points, and their DequantizeLinear. */
function weightQdq(
  wName: string,
  layer: QuantizedLayer,
  weightType: "int8" | "uint8",
  initializers: TensorProto[],
): NodeProto {
  const { q, stored, perTensor, channels, dims, axis } = layer;
  const u8 = weightType === "uint8"; // uint8 weights: q + 128, zero point 128
  initializers.push({
    name: `${wName}_quantized`,
    dims,
    dataType: u8 ? DT.UINT8 : DT.INT8,
    rawData: u8 ? Uint8Array.from(q, (v) => v + 128) : new Uint8Array(q.buffer),
  });
  initializers.push({
    name: `${wName}_scale`,
    dims: perTensor ? [] : [channels],
    dataType: DT.FLOAT,
    floatData: Array.from(stored),
  });
  initializers.push({
    name: `${wName}_zero_point`,
    dims: perTensor ? [] : [channels],
    dataType: u8 ? DT.UINT8 : DT.INT8,
    int32Data: new Array(stored.length).fill(u8 ? 128 : 0),
  });
  return node("DequantizeLinear", [`${wName}_quantized`, `${wName}_scale`, `${wName}_zero_point`], [
    `${wName}_dequantized`,
  ], perTensor ? {} : { axis });
}

/** The layer's float bias, corrected for the weights' rounding when means were observed. */
function correctedBias(
  bias: TensorProto,
  layer: QuantizedLayer,
  mean: Float64Array | undefined,
): Float32Array {
  const b = floatValues(bias);
  if (mean) {
    const { wf, q, scales, dims, axis, group } = layer;
    biasCorrect(b, wf, q, scales, dims, axis, mean, group);
  }
  return b;
}

/** The input stays float, so does the bias; it still gets the correction. */
function replaceFloatBias(bName: string, b: Float32Array, initializers: TensorProto[]): void {
  initializers.splice(initializers.findIndex((t) => t.name === bName), 1, {
    name: bName,
    dims: [b.length],
    dataType: DT.FLOAT,
    rawData: new Uint8Array(b.buffer),
  });
}

/** The bias as int32 in steps of s_x * s_w[c], and its DequantizeLinear. */
function int32BiasQdq(
  bName: string,
  b: Float32Array,
  sx: number,
  { channels, scales }: QuantizedLayer,
  initializers: TensorProto[],
): NodeProto {
  const bScales = new Float32Array(channels);
  const bq = new Int32Array(b.length);
  for (let c = 0; c < b.length; c++) {
    bScales[c] = sx * scales[c % channels];
    bq[c] = Math.round(b[c] / bScales[c]);
  }
  initializers.push({
    name: `${bName}_quantized`,
    dims: [b.length],
    dataType: DT.INT32,
    rawData: new Uint8Array(bq.buffer),
  });
  initializers.push({
    name: `${bName}_scale`,
    dims: [channels],
    dataType: DT.FLOAT,
    floatData: Array.from(bScales),
  });
  initializers.push({
    name: `${bName}_zero_point`,
    dims: [channels],
    dataType: DT.INT32,
    int32Data: new Array(channels).fill(0),
  });
  return node("DequantizeLinear", [`${bName}_quantized`, `${bName}_scale`, `${bName}_zero_point`], [
    `${bName}_dequantized`,
  ], { axis: 0 });
}

/** The graph's nodes with the Q/DQ pairs after their tensors and the weight DQs before their layers. */
function orderNodes(
  graph: onnxProto.onnx.IGraphProto,
  qdqNodes: Map<string, NodeProto[]>,
  weightNodes: Map<NodeProto, NodeProto[]>,
  weightOnly: Set<NodeProto>,
): NodeProto[] {
  const nodes: NodeProto[] = [];
  for (const t of graph.input ?? []) {
    if (qdqNodes.has(t.name!)) nodes.push(...qdqNodes.get(t.name!)!);
  }
  for (const n of graph.node ?? []) {
    const extra = weightNodes.get(n);
    if (extra) nodes.push(...extra);
    const inputsOut = n.input!.map((name, i) => {
      if (i === 0 && weightOnly.has(n)) return name;
      if (extra && i === 1) return `${name}_dequantized`;
      if (extra && i === 2 && name && extra.length > 1) return `${name}_dequantized`;
      return qdqNodes.has(name) ? `${name}_dequantized` : name;
    });
    nodes.push({ ...n, input: inputsOut });
    for (const o of n.output ?? []) if (qdqNodes.has(o)) nodes.push(...qdqNodes.get(o)!);
  }
  return nodes;
}

/**
 * Graph outputs keep their float producers' names (consumers of the DQ copies are
 * inside). Per-channel DequantizeLinear (the axis attribute) needs opset 13.
 */
function encodeQuantized(
  model: ModelProto,
  nodes: NodeProto[],
  initializer: TensorProto[],
): Uint8Array {
  const opsets = (model.opsetImport ?? []).map((o) =>
    (o.domain ?? "") === "" ? { domain: "", version: Math.max(OPSET, Number(o.version)) } : o
  );
  const out = onnx.ModelProto.create({
    ...model,
    opsetImport: opsets,
    producerName: "alexnet-edge quantize",
    graph: { ...model.graph!, node: nodes, initializer },
  });
  return onnx.ModelProto.encode(out).finish();
}
