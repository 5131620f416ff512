/**
 * QOperator int8 graphs (QLinearConv, QLinearMatMul + com.microsoft QLinearAdd, uint8
 * MaxPool/Reshape between them: what Intel Neural Compressor wrote for the ONNX Model
 * Zoo's bvlcalexnet-12-int8) rewritten at load into the QDQ layout our int8 kernels
 * take whole (src/runtime/qdq_ops.ts):
 *
 *   x_q -> QLinearConv(W, B) -> y_q       becomes   x -> Q -> DQ -> Conv(DQ(W), DQ(B)) -> y
 *   a_q -> QLinearMatMul(B[K,N]) -> QLinearAdd(bias_q) -> c_q
 *                                         becomes   a -> Q -> DQ -> Gemm(DQ(B^T), bias, transB)
 *
 * Every uint8 tensor t_q = Q(v, s, z) of the original is carried as the float v before
 * its rounding ("pending"), and the rounding happens where onnxruntime does it: in the
 * QuantizeLinear our next int8 layer absorbs. MaxPool, Relu and Reshape/Flatten commute
 * with that rounding (it is monotone), so they run on v. Where a float op needs DQ(t_q)
 * itself (LRN, Softmax, a graph output), an identity layer does the rounding: a QDQ
 * depthwise 1x1 Conv with weight 1 and scale 1 (4-D), or a QDQ Gemm by the identity
 * (2-D), whose output f32(q - z) * s is exactly DequantizeLinear's.
 *
 * Two roundings are not kept by default (`exact` keeps them, at a cost): QLinearMatMul
 * rounds its product to uint8 before QLinearAdd adds the bias and rounds again, where the
 * Gemm adds the bias in float and rounds once; and a conv output read by LRN goes there
 * unrounded (through a ReLU, as its zero point 0 clamp would; not clipped at 255 steps).
 * So some fc outputs differ from onnxruntime's by a step or two, and a few activations
 * after the LRNs by one. With `exact`, every tensor holds onnxruntime's integers except
 * at near-ties of the requantization (about one activation in a million): onnxruntime
 * scales the int32 sum plus bias by one float (s_x s_w / s_y), our kernels scale the sum,
 * add the bias in float, then divide. Measured in BENCHMARKS.md, "QOperator int8 on our
 * kernels".
 *
 * Anything else (int8 activations, weight zero points other than 0 or 128, QLinearAdd
 * of two activations, unknown ops on uint8 tensors) leaves the model untouched, and
 * onnxruntime runs it; the returned reason says why.
 *
 * @module
 */
import type onnxProto from "onnx-proto";
import { decodeModel, onnx, tensorValues } from "./onnx.ts";

type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;
const DT = onnx.TensorProto.DataType;

/** Op types that mark a QOperator graph. */
const QOPERATOR_OPS = new Set(["QLinearConv", "QLinearMatMul", "QLinearAdd", "QGemm"]);

/** Largest 2-D tensor rounded by an identity Gemm (its N x N int8 matrix: 4 MiB). */
const MAX_IDENTITY_GEMM = 2048;

/** Options of {@linkcode rewriteQOperator}. */
export interface QOperatorOptions {
  /**
   * Keep every rounding onnxruntime does, with identity layers: of a conv's output
   * before a float op reads it (LRN; a depthwise 1x1 Conv, slow on our grouped conv
   * path), and of QLinearMatMul's product before QLinearAdd adds the bias (an N x N
   * Gemm per fc layer: 34 MB for AlexNet). AlexNet then takes 101 instead of 76 ms
   * (BENCHMARKS.md, "QOperator int8 on our kernels"). Default false: those tensors go
   * on unrounded (a ReLU does what the zero point 0 clamp did), which moves some
   * activations by a step or more. The 2-D rounding before Softmax or a graph output
   * is always kept (one 1000 x 1000 identity: 1 MB, 0.5 ms).
   */
  exact?: boolean;
  /**
   * The caller gives `bytes` away (it will not read them again): the fc weights are
   * transposed inside them instead of into a copy, which saves their size (58 MB for
   * AlexNet) at the load's peak. Default false. Nothing is changed when the rewrite
   * falls back.
   */
  inPlace?: boolean;
}

/** Result of {@linkcode rewriteQOperator}. */
export interface QOperatorRewrite {
  /** The QDQ model, or the input bytes themselves when nothing was rewritten. */
  bytes: Uint8Array;
  /** Whether `bytes` is a rewritten model. */
  rewritten: boolean;
  /** Why not, when the model is QOperator but could not be rewritten. */
  reason?: string;
  /** Identity layers added to round a tensor that a float op reads (count). */
  identities?: number;
}

/**
 * Whether a model holds QOperator int8 nodes (QLinearConv, QLinearMatMul, ...).
 *
 * @example
 * ```ts
 * import { isQOperator } from "./qoperator.ts";
 * import { buildAlexNet } from "../model/alexnet.ts";
 *
 * isQOperator(buildAlexNet({ inputSize: 67 })); // false
 * ```
 */
export function isQOperator(bytes: Uint8Array): boolean {
  return hasQOperatorNodes(decodeModel(bytes).graph);
}

function hasQOperatorNodes(graph: onnxProto.onnx.IGraphProto | null | undefined): boolean {
  return (graph?.node ?? []).some((n) => QOPERATOR_OPS.has(n.opType ?? ""));
}

/** A quantized tensor t_q = Q(v, scale, zp), carried as the float v (or DQ(t_q) if exact). */
interface Rep {
  /** Float tensor of the new graph holding v. */
  name: string;
  scale: number;
  zp: number;
  /** `name` already holds DQ(t_q) exactly (no rounding pending). */
  exact: boolean;
  /** Rank and size of dimension 1 (channels / features), when known. */
  rank?: number;
  dim1?: number;
  /** Whether the original tensor is the uint8 one (not a DequantizeLinear output). */
  quantized: boolean;
}

/** Thrown inside the rewrite to fall back; its message is the reason. */
class Unsupported extends Error {}

function attr(n: NodeProto, name: string) {
  return n.attribute?.find((a) => a.name === name);
}

function scalarTensor(name: string, type: number, values: ArrayLike<number>, dims: number[]) {
  const t: TensorProto = { name, dims, dataType: type };
  if (type === DT.FLOAT) t.floatData = Array.from(values);
  else t.int32Data = Array.from(values);
  return t;
}

/** DequantizeLinear of a constant per output channel (axis 0): `name` = f32(x - 0) * scale. */
function dequantizePerChannel(name: string, x: string, scale: string): NodeProto {
  return {
    opType: "DequantizeLinear",
    name,
    input: [x, scale],
    output: [name],
    attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: 0 }],
  };
}

function rawTensor(name: string, type: number, dims: number[], data: ArrayBufferView): TensorProto {
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { name, dims, dataType: type, rawData: raw };
}

/**
 * Rewrites a QOperator int8 model into the QDQ layout our int8 kernels run whole;
 * returns the input bytes untouched (with a reason) for what it does not understand,
 * and for models that are not QOperator (no reason).
 *
 * @example
 * ```ts
 * import { rewriteQOperator } from "./qoperator.ts";
 *
 * const bytes = await Deno.readFile("models/bvlcalexnet-12-int8.onnx");
 * const { bytes: qdq, rewritten, reason } = rewriteQOperator(bytes);
 * console.log(rewritten ? "runs on our int8 kernels" : `stays on onnxruntime: ${reason}`);
 * ```
 */
export function rewriteQOperator(
  bytes: Uint8Array,
  options: QOperatorOptions = {},
): QOperatorRewrite {
  const started = startRewrite(bytes, options);
  if (!("next" in started)) return started;
  try {
    let step = started.next();
    while (!step.done) step = started.next();
    return { ...step.value, rewritten: true };
  } catch (e) {
    if (!(e instanceof Unsupported)) throw e;
    return { bytes, rewritten: false, reason: e.message };
  }
}

/**
 * {@linkcode rewriteQOperator} giving the event loop a turn between its long steps (the
 * fc weight transposes, the encoding: a few hundred ms each for AlexNet), so a server
 * loading a model keeps answering /healthz.
 *
 * @example
 * ```ts
 * import { rewriteQOperatorAsync } from "./qoperator.ts";
 *
 * const { rewritten } = await rewriteQOperatorAsync(await Deno.readFile("model.onnx"));
 * ```
 */
export async function rewriteQOperatorAsync(
  bytes: Uint8Array,
  options: QOperatorOptions = {},
): Promise<QOperatorRewrite> {
  const started = startRewrite(bytes, options);
  if (!("next" in started)) return started;
  try {
    let step = started.next();
    while (!step.done) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      step = started.next();
    }
    return { ...step.value, rewritten: true };
  } catch (e) {
    if (!(e instanceof Unsupported)) throw e;
    return { bytes, rewritten: false, reason: e.message };
  }
}

/** The rewrite's steps for a QOperator model; the final result for any other. */
function startRewrite(
  bytes: Uint8Array,
  options: QOperatorOptions,
): QOperatorRewrite | Generator<void, { bytes: Uint8Array; identities: number }> {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = decodeModel(bytes);
  } catch {
    return { bytes, rewritten: false }; // not ONNX: whoever loads it next says so
  }
  const graph = model.graph;
  if (!graph || !hasQOperatorNodes(graph)) return { bytes, rewritten: false };
  return rewriteGraph(model, options);
}

/**
 * Checks and rewrites the graph (throwing Unsupported before anything changes), then
 * yields after each fc transpose and before encoding.
 */
function* rewriteGraph(
  model: onnxProto.onnx.ModelProto,
  options: QOperatorOptions,
): Generator<void, { bytes: Uint8Array; identities: number }> {
  const graph = model.graph!;
  const nodes = graph.node ?? [];
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const added: TensorProto[] = [];
  const out: NodeProto[] = [];
  const reps = new Map<string, Rep>();
  /** Float tensor holding v -> the one holding DQ(Q(v)), once made. */
  const exactOf = new Map<string, string>();
  const rank = new Map<string, number>();
  const dim1 = new Map<string, number>();
  for (const v of graph.input ?? []) {
    const dims = v.type?.tensorType?.shape?.dim ?? [];
    rank.set(v.name!, dims.length);
    const d = dims[1]?.dimValue;
    if (d !== undefined && d !== null && Number(d) > 0) dim1.set(v.name!, Number(d));
  }
  const graphOutputs = new Set((graph.output ?? []).map((v) => v.name!));
  // Reshape to [1, -1] is Flatten only when every input has a batch of 1.
  const batchOne = (graph.input ?? []).filter((v) => !inits.has(v.name!)).every((v) =>
    Number(v.type?.tensorType?.shape?.dim?.[0]?.dimValue ?? 0) === 1
  );
  let fresh = 0;
  const unique = (base: string) => `${base}__qdq${fresh++}`;
  let identities = 0;

  const constTensor = (name: string | null | undefined, what: string) => {
    const t = name ? inits.get(name) : undefined;
    if (!t) throw new Unsupported(`${what} is not a constant`);
    return t;
  };
  /** A small constant's values (a copy: not for weights). */
  const constValues = (name: string | null | undefined, what: string) => {
    const t = constTensor(name, what);
    return { t, values: tensorValues(t) };
  };
  /** A per-tensor activation scale and uint8 zero point (absent zero point: 0). */
  const qparams = (n: NodeProto, si: number, zi: number) => {
    const s = constValues(n.input![si], `the scale of ${n.name}`).values;
    if (s.length !== 1) throw new Unsupported(`${n.name} has a per-axis activation scale`);
    const zName = n.input![zi];
    if (!zName) return { scale: s[0], zp: 0 };
    const z = constValues(zName, `the zero point of ${n.name}`);
    if (z.t.dataType !== DT.UINT8) {
      throw new Unsupported(`${n.name} has int8 activations (our kernels take uint8)`);
    }
    return { scale: s[0], zp: z.values[0] };
  };
  const repOf = (name: string, n: NodeProto) => {
    const r = reps.get(name);
    if (!r) throw new Unsupported(`${n.name} reads ${name}, which no QuantizeLinear made`);
    return r;
  };
  const sameParams = (r: Rep, p: { scale: number; zp: number }) =>
    Math.fround(r.scale) === Math.fround(p.scale) && r.zp === p.zp;
  const paramInits = (base: string, p: { scale: number; zp: number }) => {
    const s = unique(`${base}_scale`), z = unique(`${base}_zero_point`);
    added.push(scalarTensor(s, DT.FLOAT, [p.scale], []), scalarTensor(z, DT.UINT8, [p.zp], []));
    return [s, z];
  };
  /** Q -> DQ of `r` with its own parameters, for one int8 layer to absorb. */
  const qdq = (r: Rep) => {
    const [s, z] = paramInits(r.name, r);
    const q = unique(`${r.name}_q`), dq = unique(`${r.name}_dq`);
    out.push(
      { opType: "QuantizeLinear", name: q, input: [r.name, s, z], output: [q] },
      { opType: "DequantizeLinear", name: dq, input: [q, s, z], output: [dq] },
    );
    return dq;
  };
  const gemm = (name: string, input: string[], output: string): NodeProto => ({
    opType: "Gemm",
    name,
    input,
    output: [output],
    attribute: [{ name: "transB", type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
  });
  /**
   * An identity layer on Q -> DQ of `r`: its output is DQ(t_q) exactly (plus `bias`, for
   * a 2-D tensor), named `target` when given.
   */
  const identity = (r: Rep, n: NodeProto, o: { target?: string; bias?: string } = {}) => {
    const c = r.dim1;
    if (!c || (r.rank !== 4 && r.rank !== 2)) {
      throw new Unsupported(`${n.name} reads a quantized tensor of unknown shape in float`);
    }
    if (r.rank === 2 && c > MAX_IDENTITY_GEMM && !o.bias) {
      throw new Unsupported(`${n.name} reads ${c} quantized features in float`);
    }
    identities++;
    const x = qdq(r);
    const name = o.target ?? unique(`${r.name}_exact`);
    const w = unique(`${r.name}_identity`), ws = unique(`${r.name}_identity_scale`);
    const wq = unique(`${r.name}_identity_dq`);
    added.push(scalarTensor(ws, DT.FLOAT, [1], []));
    out.push({ opType: "DequantizeLinear", name: wq, input: [w, ws], output: [wq] });
    if (r.rank === 4) {
      // y[c] = 1 * (q[c] - z) * (s * 1): a depthwise 1x1 Conv, one channel per group.
      added.push(rawTensor(w, DT.INT8, [c, 1, 1, 1], new Int8Array(c).fill(1)));
      out.push({
        opType: "Conv",
        name,
        input: [x, wq],
        output: [name],
        attribute: [
          { name: "group", type: onnx.AttributeProto.AttributeType.INT, i: c },
          { name: "kernel_shape", type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 1] },
        ],
      });
    } else {
      const eye = new Int8Array(c * c);
      for (let i = 0; i < c; i++) eye[i * c + i] = 1;
      added.push(rawTensor(w, DT.INT8, [c, c], eye));
      out.push(gemm(name, o.bias ? [x, wq, o.bias] : [x, wq], name));
    }
    return name;
  };
  /** A float tensor holding DQ(t_q) exactly, named `target` when given. */
  const exact = (r: Rep, n: NodeProto, target?: string): string => {
    if (r.exact && !target) return r.name;
    const known = exactOf.get(r.name);
    if (known && !target) return known;
    let name: string;
    if (!options.exact && !target && r.rank === 4 && r.zp === 0) {
      // Unrounded: the zero point 0 clamp is a ReLU (our conv kernel absorbs it).
      name = unique(`${r.name}_relu`);
      out.push({ opType: "Relu", name, input: [r.name], output: [name] });
    } else name = identity(r, n, { target });
    if (!target) exactOf.set(r.name, name);
    return name;
  };
  /** The layer's input: Q -> DQ of the producer's tensor, with matching parameters. */
  const layerInput = (n: NodeProto, x: string, p: { scale: number; zp: number }) => {
    const r = repOf(x, n);
    if (!r.quantized) throw new Unsupported(`${n.name} reads a float tensor`);
    if (!sameParams(r, p)) {
      throw new Unsupported(`${n.name} reads ${x} with other quantization parameters`);
    }
    return { x: qdq(r), r };
  };
  /** int8 weights with zero point 0 (uint8 with zero point 128 shifted to int8). */
  const int8Weights = (n: NodeProto, wi: number, zi: number) => {
    const t = constTensor(n.input![wi], `the weights of ${n.name}`);
    const zName = n.input![zi];
    const zeros = zName ? constValues(zName, `the weight zero point of ${n.name}`).values : [0];
    const dims = (t.dims ?? []).map(Number);
    if (t.dataType === DT.INT8 && Array.from(zeros).every((v) => v === 0)) {
      return { t, dims, values: undefined as Int8Array | undefined };
    }
    if (t.dataType === DT.UINT8 && Array.from(zeros).every((v) => v === 128)) {
      const u = tensorValues(t) as Uint8Array;
      return { t, dims, values: Int8Array.from(u, (v) => v - 128) };
    }
    throw new Unsupported(`${n.name} has weights with nonzero zero points`);
  };
  const readers = new Map<string, NodeProto[]>();
  for (const n of nodes) {
    for (const i of n.input ?? []) if (i) readers.set(i, [...(readers.get(i) ?? []), n]);
  }
  const skip = new Set<NodeProto>();
  /** The fc weight transposes, run once nothing can fall back any more. */
  const transposes: (() => void)[] = [];
  const transposed = new Set<string>();
  /** Outputs of dropped no-op nodes (float Dropout) -> the tensor they pass on. */
  const renamed = new Map<string, string>();

  for (const original of nodes) {
    if (skip.has(original)) continue;
    const n = renamed.size === 0
      ? original
      : { ...original, input: (original.input ?? []).map((i) => renamed.get(i) ?? i) };
    const op = n.opType!;
    const domain = n.domain ?? "";
    const [y] = n.output ?? [];
    if (domain !== "" && !(domain === "com.microsoft" && op === "QLinearAdd")) {
      throw new Unsupported(`${n.name} is ${domain}.${op}`);
    }
    switch (op) {
      case "QuantizeLinear": {
        if (attr(n, "axis") !== undefined && constValues(n.input![1], "").values.length !== 1) {
          throw new Unsupported(`${n.name} quantizes per axis`);
        }
        const p = qparams(n, 1, 2);
        const x = n.input![0];
        const from = reps.get(x);
        if (from && sameParams(from, p)) {
          reps.set(y, { ...from, quantized: true });
        } else {
          const name = from ? exact(from, n) : x;
          reps.set(y, {
            name,
            ...p,
            exact: false,
            rank: from?.rank ?? rank.get(x),
            dim1: from?.dim1 ?? dim1.get(x),
            quantized: true,
          });
        }
        break;
      }
      case "DequantizeLinear": {
        if (inits.has(n.input![0])) {
          out.push(n); // a constant: onnxruntime (or folding) deals with it as before
          break;
        }
        const r = repOf(n.input![0], n);
        if (!sameParams(r, qparams(n, 1, 2))) {
          throw new Unsupported(`${n.name} dequantizes with other parameters than its input's`);
        }
        reps.set(y, { ...r, quantized: false });
        break;
      }
      case "QLinearConv": {
        // x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B
        const { x } = layerInput(n, n.input![0], qparams(n, 1, 2));
        const w = int8Weights(n, 3, 5);
        const m = w.dims[0];
        const ws = constValues(n.input![4], `the weight scale of ${n.name}`).values;
        if (w.dims.length !== 4 || (ws.length !== 1 && ws.length !== m)) {
          throw new Unsupported(`${n.name} is not a 2-D convolution with per-channel scales`);
        }
        const wName = w.values ? unique(`${n.input![3]}_s8`) : n.input![3];
        if (w.values) added.push(rawTensor(wName, DT.INT8, w.dims, w.values));
        const wsName = unique(`${n.input![3]}_scale`);
        added.push(scalarTensor(wsName, DT.FLOAT, ws, [ws.length]));
        const wdq = unique(`${n.input![3]}_dq`);
        out.push(dequantizePerChannel(wdq, wName, wsName));
        const inputs = [x, wdq];
        const xs = qparams(n, 1, 2).scale;
        if (n.input![8]) {
          // int32 bias in steps of s_x * s_w[m], as QLinearConv adds it to the sums.
          const b = constValues(n.input![8], `the bias of ${n.name}`);
          if (b.t.dataType !== DT.INT32) throw new Unsupported(`${n.name} has a non-int32 bias`);
          const bs = unique(`${n.input![8]}_scale`), bdq = unique(`${n.input![8]}_dq`);
          const scales = Float32Array.from(
            { length: m },
            (_, i) => Math.fround(xs * ws[ws.length === 1 ? 0 : i]),
          );
          added.push(scalarTensor(bs, DT.FLOAT, scales, [m]));
          out.push(dequantizePerChannel(bdq, n.input![8], bs));
          inputs.push(bdq);
        }
        const name = unique(`${y}_f`);
        out.push({
          opType: "Conv",
          name: n.name ?? name,
          input: inputs,
          output: [name],
          attribute: n.attribute,
        });
        const p = qparams(n, 6, 7);
        reps.set(y, { name, ...p, exact: false, rank: 4, dim1: m, quantized: true });
        break;
      }
      case "QLinearMatMul": {
        // a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp
        const a = repOf(n.input![0], n);
        if (a.rank !== 2) throw new Unsupported(`${n.name} multiplies a tensor of rank ${a.rank}`);
        const { x } = layerInput(n, n.input![0], qparams(n, 1, 2));
        const w = int8Weights(n, 3, 5);
        if (w.dims.length !== 2) throw new Unsupported(`${n.name} has a batched weight`);
        const [k, nOut] = w.dims;
        const ws = constValues(n.input![4], `the weight scale of ${n.name}`).values;
        if (ws.length !== 1 && ws.length !== nOut) {
          throw new Unsupported(`${n.name} has a weight scale of ${ws.length} values`);
        }
        // Our Gemm kernel reads W as [N, K] (transB): the [K, N] weights are transposed
        // once, after the whole graph is accepted (in place, the caller's bytes may change).
        if (transposed.has(n.input![3])) throw new Unsupported(`${n.name} shares its weights`);
        transposed.add(n.input![3]);
        const src = w.values ?? int8View(w.t);
        const wt = w.values || !options.inPlace ? new Int8Array(src.length) : src;
        transposes.push(() => transposeInto(src, k, nOut, wt));
        const wName = unique(`${n.input![3]}_t`), wsName = unique(`${n.input![3]}_scale`);
        added.push(
          rawTensor(wName, DT.INT8, [nOut, k], wt),
          scalarTensor(wsName, DT.FLOAT, ws, [ws.length]),
        );
        const wdq = unique(`${n.input![3]}_dq`);
        out.push(dequantizePerChannel(wdq, wName, wsName));
        let outName = y;
        let p = qparams(n, 6, 7);
        const inputs = [x, wdq];
        const next = readers.get(y) ?? [];
        if (next.length === 1 && next[0].opType === "QLinearAdd" && !graphOutputs.has(y)) {
          // QLinearAdd(y, bias): the bias goes into the Gemm, its output parameters to y.
          const add = next[0];
          const [ai, , , bi] = add.input!;
          const [biasIn, sIdx, zIdx] = ai === y ? [bi, 4, 5] : [ai, 1, 2];
          const inP = ai === y ? qparams(add, 1, 2) : qparams(add, 4, 5);
          if (!sameParams({ ...a, ...p }, inP)) {
            throw new Unsupported(`${add.name} reads ${y} with other quantization parameters`);
          }
          const bias = constValues(biasIn, `the second input of ${add.name}`).values;
          if (bias.length !== nOut) throw new Unsupported(`${add.name} is not a bias add`);
          const bp = qparams(add, sIdx, zIdx);
          const bName = unique(`${biasIn}_f`);
          added.push(rawTensor(
            bName,
            DT.FLOAT,
            [nOut],
            Float32Array.from(bias, (v) => Math.fround((v - bp.zp) * bp.scale)),
          ));
          outName = add.output![0];
          skip.add(add);
          if (options.exact) {
            // As onnxruntime: round the product, then add the bias with an identity Gemm.
            const name = unique(`${y}_f`);
            out.push(gemm(n.name ?? name, inputs, name));
            const mm: Rep = { name, ...p, exact: false, rank: 2, dim1: nOut, quantized: true };
            const sum = identity(mm, n, { bias: bName });
            reps.set(outName, { ...mm, name: sum, ...qparams(add, 6, 7) });
            break;
          }
          inputs.push(bName);
          p = qparams(add, 6, 7);
        }
        const name = unique(`${outName}_f`);
        out.push(gemm(n.name ?? name, inputs, name));
        reps.set(outName, { name, ...p, exact: false, rank: 2, dim1: nOut, quantized: true });
        break;
      }
      case "MaxPool":
      case "Relu":
      case "Flatten":
      case "Reshape":
      case "Dropout": {
        const r = reps.get(n.input![0]);
        const mask = n.output?.[1];
        if (!r && op === "Dropout" && !graphOutputs.has(y) && !(mask && readers.has(mask))) {
          renamed.set(y, n.input![0]); // inference: the identity, and not a kernel
          break;
        }
        if (!r) {
          out.push(n);
          trackShape(n, rank, dim1);
          break;
        }
        // Monotone or layout-only: they commute with the pending rounding.
        if (op === "MaxPool" && (n.output ?? []).length > 1) {
          throw new Unsupported(`${n.name} also returns indices`);
        }
        const name = unique(`${y}_f`);
        let flat = op === "Flatten" || op === "Reshape";
        if (op === "Reshape") flat = reshapeIsFlatten(n, inits, batchOne);
        if (op === "Flatten" && Number(attr(n, "axis")?.i ?? 1) !== 1) flat = false;
        if ((op === "Flatten" || op === "Reshape") && !flat) {
          throw new Unsupported(`${n.name} reshapes a quantized tensor other than flattening it`);
        }
        if (op === "Dropout" || (flat && r.rank === 2)) {
          reps.set(y, r);
          break;
        }
        const kept = flat
          ? {
            opType: "Flatten",
            name: n.name,
            input: [r.name],
            output: [name],
            attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
          }
          : { ...n, input: [r.name], output: [name] };
        out.push(kept);
        const features = flat ? flatFeatures(r) : r.dim1;
        reps.set(y, {
          ...r,
          name,
          rank: flat ? 2 : r.rank,
          dim1: features,
        });
        break;
      }
      default: {
        if (QOPERATOR_OPS.has(op)) throw new Unsupported(`${n.name} (${op}) is not supported`);
        // A float op: it reads DQ(t_q) exactly.
        const input = (n.input ?? []).map((i) => {
          const r = i ? reps.get(i) : undefined;
          if (!r) return i;
          if (r.quantized) throw new Unsupported(`${n.name} (${op}) reads a uint8 tensor`);
          return exact(r, n);
        });
        out.push({ ...n, input });
        trackShape(n, rank, dim1, reps);
      }
    }
  }
  // Graph outputs that were DequantizeLinear outputs: round them under their own name.
  for (const o of graph.output ?? []) {
    const r = reps.get(o.name!);
    if (!r) continue;
    if (r.quantized) throw new Unsupported(`the graph returns the uint8 tensor ${o.name}`);
    exact(r, { name: o.name }, o.name!);
  }

  for (const run of transposes) {
    yield;
    run();
  }
  yield;
  const used = new Set(out.flatMap((n) => n.input ?? []));
  const initializer = [...(graph.initializer ?? []).filter((t) => used.has(t.name!)), ...added];
  const initNames = new Set(initializer.map((t) => t.name!));
  const rewritten = onnx.ModelProto.create({
    irVersion: Math.max(Number(model.irVersion ?? 7), 7),
    producerName: `${model.producerName ?? ""} + alexnet-edge qoperator`,
    // Per-axis DequantizeLinear needs opset 13.
    opsetImport: [
      ...(model.opsetImport ?? []).filter((o) => (o.domain ?? "") !== ""),
      { domain: "", version: Math.max(13, defaultOpset(model)) },
    ],
    graph: {
      name: graph.name,
      node: out,
      initializer,
      // Old IR versions list initializers as inputs too: keep only real inputs.
      input: (graph.input ?? []).filter((v) => !inits.has(v.name!) || initNames.has(v.name!)),
      output: graph.output,
    },
  });
  return { bytes: onnx.ModelProto.encode(rewritten).finish(), identities };
}

function defaultOpset(model: onnxProto.onnx.ModelProto): number {
  const o = (model.opsetImport ?? []).find((x) => (x.domain ?? "") === "");
  return Number(o?.version ?? 13);
}

/**
 * src: [rows, cols] -> dst: [cols, rows], in 64 x 64 tiles (3.7x faster than row by row
 * for fc6). `dst` may be `src`: then a temporary copy is made and freed at once.
 */
function transposeInto(src: Int8Array, rows: number, cols: number, dst: Int8Array): void {
  const from = dst === src ? src.slice() : src;
  const tile = 64;
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const r1 = Math.min(rows, r0 + tile);
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const c1 = Math.min(cols, c0 + tile);
      for (let r = r0; r < r1; r++) {
        for (let c = c0, i = r * cols + c0; c < c1; c++, i++) dst[c * rows + r] = from[i];
      }
    }
  }
  // Detaching frees the copy now rather than at the next GC (fc6: 36 MiB of peak RSS).
  if (from !== src && from.buffer instanceof ArrayBuffer) from.buffer.transfer(0);
}

function int8View(t: TensorProto): Int8Array {
  const raw = t.rawData;
  return raw && raw.length > 0
    ? new Int8Array(raw.buffer, raw.byteOffset, raw.length)
    : tensorValues(t) as Int8Array;
}

function flatFeatures(r: Rep): number | undefined {
  return r.rank === 2 ? r.dim1 : undefined;
}

/**
 * Whether Reshape(x, shape) is Flatten(axis 1) for this graph: a 2-D target shape whose
 * first entry keeps the batch (0, or 1 when the input's batch is 1) and whose second
 * is -1 or the rest.
 */
function reshapeIsFlatten(
  n: NodeProto,
  inits: Map<string, TensorProto>,
  batchOne: boolean,
): boolean {
  const t = inits.get(n.input![1] ?? "");
  if (!t) return false;
  const shape = (t.int64Data ?? []).length > 0
    ? (t.int64Data ?? []).map(Number)
    : t.rawData && t.rawData.length === 16
    ? Array.from(new BigInt64Array(t.rawData.slice().buffer), Number)
    : [];
  if (shape.length !== 2) return false;
  // The zoo's graph has a fixed batch of 1 and writes [1, 9216].
  return (shape[0] === 0 || (shape[0] === 1 && batchOne)) && (shape[1] === -1 || shape[1] > 0);
}

/** Rank and dimension 1 of a float node's output, where it is plain to see. */
function trackShape(
  n: NodeProto,
  rank: Map<string, number>,
  dim1: Map<string, number>,
  reps?: Map<string, Rep>,
): void {
  const x = n.input?.[0];
  const y = n.output?.[0];
  if (!x || !y) return;
  const r = reps?.get(x);
  const inRank = r?.rank ?? rank.get(x);
  const inDim1 = r?.dim1 ?? dim1.get(x);
  if (["LRN", "Relu", "Softmax", "MaxPool", "Dropout", "Identity"].includes(n.opType!)) {
    if (inRank !== undefined) rank.set(y, inRank);
    if (inDim1 !== undefined) dim1.set(y, inDim1);
  }
}

/**
 * The model as our int8 kernels take it: a QOperator file rewritten to QDQ, anything
 * else as it is. Says on `log` what happened to a QOperator file, and why not when
 * onnxruntime keeps it.
 *
 * @example
 * ```ts
 * import { forInt8Kernels } from "./qoperator.ts";
 *
 * const file = await Deno.readFile("models/bvlcalexnet-12-int8.onnx");
 * const bytes = await forInt8Kernels(file, console.log);
 * ```
 */
export async function forInt8Kernels(
  bytes: Uint8Array,
  log?: (line: string) => void,
  options: Pick<QOperatorOptions, "inPlace"> = {},
): Promise<Uint8Array> {
  const start = performance.now();
  let result: QOperatorRewrite;
  try {
    result = await rewriteQOperatorAsync(bytes, options);
  } catch (e) {
    // A malformed file or a bug here must not stop onnxruntime from trying it.
    result = { bytes, rewritten: false, reason: `the rewrite failed (${(e as Error).message})` };
  }
  const ms = (performance.now() - start).toFixed(0);
  if (result.rewritten) {
    log?.(
      `QOperator int8 model rewritten to QDQ for our int8 kernels in ${ms} ms ` +
        `(${result.identities} identity layers round tensors that float ops read)`,
    );
  } else if (result.reason) {
    log?.(
      `Cannot run the QOperator int8 model on our kernels: ${result.reason}; ` +
        "onnxruntime-web runs it",
    );
  }
  return result.bytes;
}
