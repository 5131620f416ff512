/**
 * int8 models on the GPU. onnxruntime-web 1.30's WebGPU execution provider has
 * no QLinear* kernels, and it places QuantizeLinear on its CPU provider: every
 * quantized layer then costs a GPU -> CPU -> GPU round trip, and every weight
 * DequantizeLinear runs again on every inference. So a quantized model is
 * rewritten to float once, at load, before it is partitioned:
 *
 * - a DequantizeLinear of a constant (the int8 weights, the int32 biases)
 *   becomes its float32 initializer: y = (q - zp[c]) * s[c];
 * - a QuantizeLinear or DequantizeLinear of an activation disappears: its
 *   output is the float tensor it stood for;
 * - QLinearConv becomes Conv, QLinearMatMul MatMul and QGemm (com.microsoft)
 *   Gemm on those float weights (bias: B[c] * s_x * s_w[c]);
 * - other nodes (MaxPool, Relu, Flatten, LRN, ...) read the float tensors.
 *
 * The GPU therefore runs the model with int8-rounded weights and float
 * activations, which is closer to the fp32 model than the int8 CPU path is.
 * Any other quantized operator (QLinearAdd, ConvInteger, ...) is refused
 * with a TypeError, and the backend selection falls back to wasm.
 *
 * @module
 */
import type onnxProto from "onnx-proto";
import { intAttr } from "./attributes.ts";
import { decodeModel, floatTensor, onnx, tensorValues } from "./onnx.ts";

type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;

/** Operators this rewrite removes or replaces. */
const QUANT_OPS = new Set([
  "QuantizeLinear",
  "DequantizeLinear",
  "QLinearConv",
  "QLinearMatMul",
  "QGemm",
]);

/** Quantized operators it does not know: the model is refused. */
function isUnknownQuantized(node: NodeProto): boolean {
  const op = node.opType ?? "";
  return !QUANT_OPS.has(op) &&
    (op.startsWith("QLinear") || op.startsWith("QGemm") || op.endsWith("Integer") ||
      op === "DynamicQuantizeLinear" || op.startsWith("QAttention") || op === "QEmbedLayerNorm");
}

/** What {@linkcode dequantizeForGpu} did. */
export interface DequantizeResult {
  /** The float model (the input bytes themselves when there was nothing to do). */
  bytes: Uint8Array;
  /** Quantized nodes removed or replaced (0: the model was float). */
  nodes: number;
}

/**
 * y = f32((q - zp[c]) * s[c]), c the index along `axis` when the scale has
 * more than one value (ONNX DequantizeLinear). q: any shape, s and zp: [] or [C].
 *
 * @example
 * ```ts
 * // w: [2, 2] int8, one scale per row (axis 0)
 * dequantizeValues([10, -10, 4, 8], [2, 2], [0.5, 0.25], undefined, 0); // [5, -5, 1, 2]
 * ```
 */
export function dequantizeValues(
  q: ArrayLike<number>,
  dims: readonly number[],
  scale: ArrayLike<number>,
  zero: ArrayLike<number> | undefined,
  axis: number,
): Float32Array {
  const a = dims.length === 0 ? 0 : (axis + dims.length) % dims.length;
  const inner = dims.slice(a + 1).reduce((x, y) => x * y, 1);
  const channels = scale.length;
  const y = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) {
    const c = channels === 1 ? 0 : Math.floor(i / inner) % channels;
    y[i] = Math.fround((q[i] - (zero ? zero[c] : 0)) * scale[c]);
  }
  return y;
}

/**
 * Rewrites a quantized (QDQ or QOperator) ONNX model to float for the GPU; a
 * float model comes back as the same bytes, without a decode/encode.
 *
 * @example
 * ```ts
 * const { bytes, nodes } = dequantizeForGpu(int8Bytes);
 * // nodes > 0: bytes is now a float model with the int8-rounded weights
 * ```
 */
export function dequantizeForGpu(bytes: Uint8Array): DequantizeResult {
  const model = decodeModel(bytes);
  const graph = model.graph;
  if (!graph) throw new TypeError("Cannot dequantize the model: it has no graph");
  const nodes = graph.node ?? [];
  const unknown = nodes.find(isUnknownQuantized);
  if (unknown) {
    throw new TypeError(
      `Cannot run the model on the GPU: its ${unknown.opType} node ${unknown.name} has no ` +
        "float rewrite (QuantizeLinear, DequantizeLinear, QLinearConv, QLinearMatMul, QGemm have)",
    );
  }
  const kind = (n: NodeProto) =>
    !n.domain || n.domain === "ai.onnx" || (n.domain === "com.microsoft" && n.opType === "QGemm")
      ? n.opType ?? ""
      : "";
  const quantized = nodes.filter((n) => QUANT_OPS.has(kind(n)));
  if (quantized.length === 0) return { bytes, nodes: 0 };

  const inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const values = (name: string | undefined | null) => {
    const t = name ? inits.get(name) : undefined;
    return t ? tensorValues(t) : undefined;
  };
  const constant = (name: string, what: string) => {
    const t = inits.get(name);
    if (!t) throw new TypeError(`Cannot dequantize ${what}: "${name}" is not a constant`);
    return t;
  };
  /** A quantized tensor's name -> the float tensor it stands for. */
  const alias = new Map<string, string>();
  const f = (name: string) => alias.get(name) ?? name;
  const added: TensorProto[] = [];
  const out: NodeProto[] = [];

  const weight = (w: string, s: string, z: string | undefined, axis: number, name: string) => {
    const t = constant(w, name);
    const dims = (t.dims ?? []).map(Number);
    const y = dequantizeValues(tensorValues(t), dims, values(s)!, values(z), axis);
    const result = floatTensor(`${w}_gpu_float`, dims, y);
    added.push(result);
    return result.name!;
  };

  /** An int32 bias b[c] quantized with s_x * s_w[c], as float32. */
  const bias = (b: string, sx: string, sw: string, name: string) => {
    const scaleX = values(sx)![0];
    const scaleW = values(sw)!;
    const bq = tensorValues(constant(b, name));
    const y = new Float32Array(bq.length);
    for (let c = 0; c < y.length; c++) {
      y[c] = Math.fround(bq[c] * scaleX * scaleW[scaleW.length === 1 ? 0 : c]);
    }
    const result = floatTensor(`${b}_gpu_float`, [y.length], y);
    added.push(result);
    return result.name!;
  };

  for (const n of nodes) {
    const input = n.input ?? [];
    switch (kind(n)) {
      case "DequantizeLinear":
        if (inits.has(input[0])) {
          const t = inits.get(input[0])!;
          const dims = (t.dims ?? []).map(Number);
          const y = dequantizeValues(
            tensorValues(t),
            dims,
            values(input[1])!,
            values(input[2]),
            intAttr(n, "axis", 1),
          );
          added.push(floatTensor(n.output![0], dims, y));
        } else {
          alias.set(n.output![0], f(input[0]));
        }
        continue;
      case "QuantizeLinear":
        alias.set(n.output![0], f(input[0]));
        continue;
      case "QLinearConv": {
        // x_q, s_x, zp_x, w_q, s_w, zp_w, s_y, zp_y, B_int32 -> Conv(x, w, b)
        const [x, sx, , w, sw, zw, , , b] = input;
        const inputs = [f(x), weight(w, sw, zw, 0, `QLinearConv ${n.name}`)];
        if (b) inputs.push(bias(b, sx, sw, `QLinearConv ${n.name}`));
        out.push({ ...n, opType: "Conv", input: inputs });
        continue;
      }
      case "QGemm": {
        // a_q, s_a, zp_a, b_q, s_b, zp_b, C_int32?, s_y?, zp_y? -> Gemm(a, b, c), alpha and
        // transA/transB kept; s_b per output column (axis 0 of b when transB, else its last).
        const [a, sa, , b, sb, zb, c] = input;
        const axis = intAttr(n, "transB", 0) ? 0 : -1;
        const inputs = [f(a), weight(b, sb, zb, axis, `QGemm ${n.name}`)];
        if (c) inputs.push(bias(c, sa, sb, `QGemm ${n.name}`));
        out.push({ ...n, domain: "", opType: "Gemm", input: inputs });
        continue;
      }
      case "QLinearMatMul": {
        // a_q, s_a, zp_a, b_q, s_b, zp_b, s_y, zp_y -> MatMul(a, b); b: [K, N], s_b: [] or [N]
        const [a, , , b, sb, zb] = input;
        out.push({
          ...n,
          opType: "MatMul",
          attribute: [],
          input: [f(a), weight(b, sb, zb, -1, `QLinearMatMul ${n.name}`)],
        });
        continue;
      }
      default:
        out.push({ ...n, input: input.map((name) => name === "" ? name : f(name)) });
    }
  }

  // A graph output that was an alias gets its name back through an Identity.
  for (const o of graph.output ?? []) {
    const source = f(o.name!);
    if (source !== o.name) {
      out.push({
        opType: "Identity",
        name: `${o.name}_gpu_float`,
        input: [source],
        output: [o.name!],
      });
    }
    const type = o.type?.tensorType;
    if (type) type.elemType = onnx.TensorProto.DataType.FLOAT;
  }
  const read = new Set(out.flatMap((n) => n.input ?? []));
  graph.node = out;
  // Initializers listed as graph inputs (older files) go with them.
  graph.input = (graph.input ?? []).filter((i) => !inits.has(i.name!) || read.has(i.name!));
  graph.initializer = [
    ...(graph.initializer ?? []).filter((t) => read.has(t.name!)),
    ...added.filter((t) => read.has(t.name!)),
  ];
  // The recorded types of the rewritten tensors are stale (uint8 -> float): let onnxruntime infer.
  graph.valueInfo = [];
  return { bytes: onnx.ModelProto.encode(model).finish(), nodes: quantized.length };
}
