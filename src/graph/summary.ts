/**
 * Reads a loaded ONNX graph back as the paper's layer table: walks the nodes
 * in order, infers every tensor's shape from the input's dims, the weights'
 * dims and the node attributes, and groups the nodes into layers (conv1 =
 * Conv + Relu, norm1 = LRN, pool1 = MaxPool, fc6 = Gemm + Relu, ...). Works on
 * float graphs and on quantized ones (QDQ pairs, QLinearConv and friends):
 * quantize/dequantize nodes are glue, weights are found through them.
 *
 * Also cuts a prefix of the graph (only the nodes and initializers needed for
 * some tensors) so those tensors can be read without a second copy of the
 * whole model.
 *
 * @module
 */
import type onnxProto from "onnx-proto";
import { intAttr, intsAttr, stringAttr, toNumber } from "./attributes.ts";
import { onnx, tensorFloats, tensorValues } from "./onnx.ts";

type ModelProto = onnxProto.onnx.IModelProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;

/** What kind of layer a row of the table is (the kinds of `alexnetShapes`). */
export type LayerKind = "conv" | "lrn" | "pool" | "fc" | "softmax";

/** One row of the layer table. */
export interface GraphLayer {
  /** Paper-style name: conv1..conv5, norm1, pool1, fc6..fc8, prob. */
  name: string;
  kind: LayerKind;
  /** Op types of the nodes making up the layer, e.g. ["Conv", "Relu"]. */
  ops: string[];
  /** Output shape without the batch: [C, H, W] or [features]; null when unknown. */
  shape: number[] | null;
  /** Learned parameters (weights and biases). */
  parameters: number;
  /** Multiply-adds per image. */
  macs: number;
  /** The graph tensor holding the layer's output (after its ReLU, if any). */
  tensor: string;
  /** Element type of that tensor ("float32", "uint8", "int8", ...). */
  dtype: string;
  /** Settings for the table: conv kernel/stride/pad/groups/out, pool kernel/stride, LRN size. */
  attrs: Record<string, number>;
}

/** The first convolution's weights w: [O, I, kH, kW] (quantized ones as stored). */
export interface ConvWeights {
  layer: string;
  dims: number[];
  values: Float32Array;
}

/** What {@linkcode summarizeGraph} finds. */
export interface GraphSummary {
  /** The image input and its shape without the batch, [C, H, W]. */
  input: { name: string; shape: number[] };
  layers: GraphLayer[];
  /** Sum over the layers. */
  parameters: number;
  /** Sum over the layers. */
  macs: number;
  /** Dropout nodes in the graph (identity at inference). */
  dropout: number;
  /** For drawing the filters; absent when the graph has no convolution. */
  firstConv?: ConvWeights;
}

const T = onnx.TensorProto.DataType;
const DTYPES: Record<number, string> = {
  [T.FLOAT]: "float32",
  [T.UINT8]: "uint8",
  [T.INT8]: "int8",
  [T.INT32]: "int32",
  [T.INT64]: "int64",
  [T.FLOAT16]: "float16",
  [T.DOUBLE]: "float64",
};

/** An INTS attribute, undefined when absent or empty (then the op's default applies). */
function attrInts(node: NodeProto, name: string): number[] | undefined {
  const ints = intsAttr(node, name);
  return ints?.length ? ints : undefined;
}

const product = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/** Ops whose output has the shape (and, but for Q/DQ, the type) of their first input. */
const SAME_SHAPE = new Set([
  "Relu",
  "LeakyRelu",
  "Clip",
  "Sigmoid",
  "Tanh",
  "Dropout",
  "LRN",
  "Softmax",
  "LogSoftmax",
  "Identity",
  "QuantizeLinear",
  "DequantizeLinear",
  "Cast",
  "BatchNormalization",
  "Add",
  "Mul",
  "Sub",
  "Div",
]);
/** Nodes that only move values between representations: never layers of their own. */
const GLUE = new Set(["QuantizeLinear", "DequantizeLinear", "Cast", "Identity"]);
/** Activations and friends that join the layer before them. */
const ATTACH = new Set([
  "Relu",
  "LeakyRelu",
  "Clip",
  "Sigmoid",
  "Tanh",
  "Dropout",
  "BatchNormalization",
]);
const POOLS = new Set(["MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"]);
/** Learned ops: where their weight (W) and bias (B) inputs are, and whether they convolve. */
const LEARNED: Record<string, { w: number; b?: number; conv: boolean }> = {
  Conv: { w: 1, b: 2, conv: true },
  ConvInteger: { w: 1, conv: true },
  QLinearConv: { w: 3, b: 8, conv: true },
  Gemm: { w: 1, b: 2, conv: false },
  QGemm: { w: 3, b: 6, conv: false },
  MatMul: { w: 1, conv: false },
  MatMulInteger: { w: 1, conv: false },
  QLinearMatMul: { w: 3, conv: false },
};
/** The input holding the quantized output's zero point, which gives its type. */
const OUTPUT_ZERO_POINT: Record<string, number> = {
  QuantizeLinear: 2,
  QLinearConv: 7,
  QLinearMatMul: 7,
  QGemm: 8,
};
/** Ops that keep their input's element type. */
const KEEP_TYPE = new Set([
  "MaxPool",
  "Relu",
  "Flatten",
  "Reshape",
  "Dropout",
  "Identity",
  "Transpose",
  "Squeeze",
  "Unsqueeze",
  "GlobalMaxPool",
]);

/** Output size of a conv or pool along one axis (ONNX rules, including ceil_mode). */
function spatial(
  size: number,
  kernel: number,
  stride: number,
  dilation: number,
  [begin, end]: [number, number],
  autoPad: string,
  ceil: boolean,
): number {
  const k = (kernel - 1) * dilation + 1;
  if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") return Math.ceil(size / stride);
  if (autoPad === "VALID") return Math.floor((size - k) / stride) + 1;
  const span = size + begin + end - k;
  let out = (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  // The last window must start inside the input or its left padding.
  if (ceil && (out - 1) * stride >= size + begin) out--;
  return out;
}

/** [N, C, H, W] after a conv or pool `node` reading x: [N, C, H, W]. */
function windowShape(node: NodeProto, x: number[], channels: number, kernel: number[]) {
  const rank = x.length - 2;
  const strides = attrInts(node, "strides") ?? Array(rank).fill(1);
  const dilations = attrInts(node, "dilations") ?? Array(rank).fill(1);
  const pads = attrInts(node, "pads") ?? Array(2 * rank).fill(0);
  const autoPad = stringAttr(node, "auto_pad") ?? "";
  const ceil = intAttr(node, "ceil_mode", 0) === 1;
  const out = [x[0], channels];
  for (let i = 0; i < rank; i++) {
    out.push(
      spatial(
        x[i + 2],
        kernel[i],
        strides[i],
        dilations[i],
        [pads[i], pads[i + rank]],
        autoPad,
        ceil,
      ),
    );
  }
  return { shape: out, strides, pads };
}

/**
 * Walks the graph and returns its layer table. `inputShape` ([C, H, W])
 * stands in for symbolic input dims (the batch is always 1).
 *
 * @example
 * ```ts
 * const { layers, parameters } = summarizeGraph(decodeModel(buildAlexNet()));
 * parameters; // 60965224
 * layers[0]; // { name: "conv1", kind: "conv", shape: [96, 55, 55], ... }
 * ```
 */
export function summarizeGraph(model: ModelProto, inputShape?: number[]): GraphSummary {
  const graph = model.graph;
  if (!graph) throw new TypeError("Cannot read the model: it has no graph");
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const input = (graph.input ?? []).find((v) => !inits.has(v.name!));
  if (!input) throw new TypeError("Cannot read the model: it has no input");
  const declared = (input.type?.tensorType?.shape?.dim ?? []).map((d) =>
    d.dimValue !== undefined && d.dimValue !== null && toNumber(d.dimValue) > 0
      ? toNumber(d.dimValue)
      : undefined
  );
  const inDims = [1, ...declared.slice(1).map((d, i) => d ?? inputShape?.[i] ?? 0)];
  if (inDims.length !== 4 || inDims.some((d) => !d)) {
    throw new TypeError(
      `Cannot read the model: input "${input.name}" is not an image [N, C, H, W] of known size`,
    );
  }

  const producer = new Map<string, NodeProto>();
  for (const n of graph.node ?? []) for (const o of n.output ?? []) producer.set(o, n);
  /** An initializer, directly or through DequantizeLinear / Identity / Cast. */
  const constant = (name: string | undefined): TensorProto | undefined => {
    if (!name) return undefined;
    const t = inits.get(name);
    if (t) return t;
    const p = producer.get(name);
    return p && GLUE.has(p.opType!) ? constant(p.input?.[0]) : undefined;
  };
  const dimsOf = (t: TensorProto) => (t.dims ?? []).map(toNumber);

  const shapes = new Map<string, number[] | null>([[input.name!, inDims]]);
  const types = new Map<string, number>([[input.name!, T.FLOAT]]);
  for (const t of inits.values()) {
    shapes.set(t.name!, dimsOf(t));
    types.set(t.name!, t.dataType ?? T.FLOAT);
  }
  for (const v of graph.valueInfo ?? []) {
    const elem = v.type?.tensorType?.elemType;
    if (elem) types.set(v.name!, elem);
  }
  /** Glue outputs point back at the tensor they carry (conv1_2_quantized -> conv1_2). */
  const root = new Map<string, string>();
  const rootOf = (name: string): string => root.get(name) ?? name;

  const layers: GraphLayer[] = [];
  let learnedCount = 0;
  let dropout = 0;
  let firstConv: ConvWeights | undefined;
  let current: GraphLayer | undefined;

  for (const node of graph.node ?? []) {
    const op = node.opType!;
    const ins = node.input ?? [];
    const x = shapes.get(ins[0]) ?? null;
    let out: number[] | null = null;
    let layer: GraphLayer | undefined;
    const learned = LEARNED[op];
    const w = learned ? constant(ins[learned.w]) : undefined;

    if (learned && w) {
      // W: conv [O, I / groups, kH, kW], Gemm [K, M] (or [M, K] with transB), MatMul [K, M].
      const wDims = dimsOf(w);
      const b = learned.b !== undefined ? constant(ins[learned.b]) : undefined;
      const parameters = product(wDims) + (b ? product(dimsOf(b)) : 0);
      learnedCount++;
      if (learned.conv && x) {
        const kernel = attrInts(node, "kernel_shape") ?? wDims.slice(2);
        const { shape, strides, pads } = windowShape(node, x, wDims[0], kernel);
        out = shape;
        const groups = intAttr(node, "group", 1);
        layer = newLayer(`conv${learnedCount}`, "conv", out, parameters, {
          out: wDims[0],
          kernel: kernel[0],
          stride: strides[0],
          pad: pads[0],
          groups,
        });
        layer.macs = product(wDims) * product(out.slice(2));
        if (!firstConv) {
          firstConv = { layer: layer.name, dims: wDims, values: tensorFloats(w) };
        }
      } else if (!learned.conv) {
        const transB = intAttr(node, "transB", 0) === 1;
        const features = transB ? wDims[0] : wDims[wDims.length - 1];
        const inFeatures = transB ? wDims[1] : wDims[0];
        out = x ? [...x.slice(0, -1), features] : [1, features];
        layer = newLayer(`fc${learnedCount}`, "fc", out, parameters, { out: features });
        layer.macs = inFeatures * features * (x ? product(x.slice(0, -1)) : 1);
      }
    } else if (POOLS.has(op) && x) {
      const global = op.startsWith("Global");
      const kernel = global ? x.slice(2) : attrInts(node, "kernel_shape") ?? [1, 1];
      const { shape, strides } = windowShape(node, x, x[1], kernel);
      out = global ? [x[0], x[1], 1, 1] : shape;
      const attrs: Record<string, number> = global ? {} : { kernel: kernel[0], stride: strides[0] };
      layer = newLayer(`pool${learnedCount}`, "pool", out, 0, attrs);
    } else if (op === "LRN") {
      out = x;
      layer = newLayer(`norm${learnedCount}`, "lrn", out, 0, { size: intAttr(node, "size", 0) });
    } else if (op === "Softmax") {
      out = x;
      layer = newLayer("prob", "softmax", out, 0, {});
    } else if (op === "Flatten" && x) {
      const axis = intAttr(node, "axis", 1);
      out = [product(x.slice(0, axis)), product(x.slice(axis))];
    } else if (op === "Reshape" && x) {
      out = reshape(x, constant(ins[1]));
    } else if (SAME_SHAPE.has(op)) {
      out = x;
    }

    const o = node.output?.[0];
    if (!o) continue;
    shapes.set(o, out);
    const zp = OUTPUT_ZERO_POINT[op];
    types.set(
      o,
      types.get(o) ??
        (zp !== undefined
          ? inits.get(ins[zp])?.dataType ?? T.UINT8
          : KEEP_TYPE.has(op)
          ? types.get(ins[0]) ?? T.FLOAT
          : T.FLOAT),
    );
    if (op === "Dropout") dropout++;

    if (layer) {
      layer.ops = [op];
      layer.tensor = o;
      layer.dtype = DTYPES[types.get(o)!] ?? "unknown";
      layers.push(layer);
      current = layer;
      root.set(o, o);
    } else if (GLUE.has(op)) {
      root.set(o, rootOf(ins[0]));
    } else if (
      current && ATTACH.has(op) && rootOf(ins[0]) === rootOf(current.tensor)
    ) {
      // conv1 = Conv + Relu: the layer's tensor becomes the activation's output
      // (Dropout is the identity at inference: the ReLU's output stays the one shown).
      current.ops.push(op);
      if (op !== "Dropout") {
        current.tensor = o;
        current.dtype = DTYPES[types.get(o)!] ?? "unknown";
        if (out) current.shape = out.slice(1);
      }
      root.set(o, o);
    } else if (current && op === "Add" && rootOf(ins[0]) === rootOf(current.tensor)) {
      // MatMul + Add(bias): the bias belongs to the layer.
      const bias = constant(ins[1]);
      if (bias) current.parameters += product(dimsOf(bias));
      current.ops.push(op);
      current.tensor = o;
      root.set(o, o);
    }
  }

  return {
    input: { name: input.name!, shape: inDims.slice(1) },
    layers,
    parameters: layers.reduce((a, l) => a + l.parameters, 0),
    macs: layers.reduce((a, l) => a + l.macs, 0),
    dropout,
    firstConv,
  };
}

function newLayer(
  name: string,
  kind: LayerKind,
  out: number[] | null,
  parameters: number,
  attrs: Record<string, number>,
): GraphLayer {
  return {
    name,
    kind,
    ops: [],
    shape: out ? out.slice(1) : null,
    parameters,
    macs: 0,
    tensor: "",
    dtype: "float32",
    attrs,
  };
}

/** ONNX Reshape: 0 copies the input dim, -1 takes what is left. */
function reshape(x: number[], shape: TensorProto | undefined): number[] | null {
  if (!shape) return null;
  const target = Array.from(tensorValues(shape));
  const dims = target.map((d, i) => (d === 0 ? x[i] : d));
  const known = product(dims.filter((d) => d !== -1));
  return dims.map((d) => (d === -1 ? product(x) / known : d));
}

/** ONNX element type number of a dtype name from {@linkcode GraphLayer.dtype}. */
function elemType(dtype: string): number {
  const found = Object.entries(DTYPES).find(([, v]) => v === dtype);
  return found ? Number(found[0]) : T.FLOAT;
}

/**
 * A model computing only `outputs` (tensor name and dtype): the nodes they
 * depend on, in graph order, and only the initializers those nodes read.
 *
 * @example
 * ```ts
 * const bytes = prefixModel(model, [{ name: "conv1_2", dtype: "float32" }]);
 * ```
 */
export function prefixModel(
  model: ModelProto,
  outputs: { name: string; dtype: string }[],
): Uint8Array {
  const graph = model.graph!;
  const needed = new Set(outputs.map((o) => o.name));
  const keep: NodeProto[] = [];
  for (const node of [...(graph.node ?? [])].reverse()) {
    if (!(node.output ?? []).some((o) => needed.has(o))) continue;
    keep.push(node);
    for (const i of node.input ?? []) if (i) needed.add(i);
  }
  keep.reverse();
  const sub = onnx.ModelProto.create({
    irVersion: model.irVersion,
    opsetImport: model.opsetImport,
    producerName: "alexnet-edge explorer",
    graph: {
      name: `${graph.name ?? "graph"}_prefix`,
      node: keep,
      initializer: (graph.initializer ?? []).filter((t) => needed.has(t.name!)),
      input: (graph.input ?? []).filter((v) => needed.has(v.name!)),
      output: outputs.map((o) =>
        onnx.ValueInfoProto.create({
          name: o.name,
          type: { tensorType: { elemType: elemType(o.dtype) } },
        })
      ),
    },
  });
  return onnx.ModelProto.encode(sub).finish();
}
