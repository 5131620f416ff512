/**
 * The steps of qoperator.ts's rewrite, one method per op kind: a writer that walks
 * the QOperator graph once, node by node, and writes the QDQ graph our int8 kernels
 * take, keeping for every uint8 tensor of the original the float tensor that carries
 * it ({@linkcode Rep}). Throws {@linkcode Unsupported} before anything of the caller's
 * changes; the fc weight transposes wait in `transposes` until the whole graph is
 * accepted. qoperator.ts's module comment says what is rewritten into what.
 *
 * @module
 */
import type onnxProto from "onnx-proto";
import { attribute, intAttr } from "./attributes.ts";
import { int8View, onnx, tensorValues } from "./onnx.ts";

type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;
const DT = onnx.TensorProto.DataType;
const INT = onnx.AttributeProto.AttributeType.INT;

/** Op types that mark a QOperator graph. */
export const QOPERATOR_OPS: ReadonlySet<string> = new Set([
  "QLinearConv",
  "QLinearMatMul",
  "QLinearAdd",
  "QGemm",
]);

/** Largest 2-D tensor rounded by an identity Gemm (its N x N int8 matrix: 4 MiB). */
const MAX_IDENTITY_GEMM = 2048;

/** Thrown inside the rewrite to fall back; its message is the reason. */
export class Unsupported extends Error {}

/** What the writer reads of qoperator.ts's options. */
export interface WriterOptions {
  exact?: boolean;
  inPlace?: boolean;
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

/** Per-tensor activation quantization parameters. */
interface QParams {
  scale: number;
  zp: number;
}

/** int8 weights as read from a QLinear node (`values` set when shifted from uint8). */
interface Weights {
  t: TensorProto;
  dims: number[];
  values: Int8Array | undefined;
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
    attribute: [{ name: "axis", type: INT, i: 0 }],
  };
}

function rawTensor(name: string, type: number, dims: number[], data: ArrayBufferView): TensorProto {
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { name, dims, dataType: type, rawData: raw };
}

function gemm(name: string, input: string[], output: string): NodeProto {
  return {
    opType: "Gemm",
    name,
    input,
    output: [output],
    attribute: [{ name: "transB", type: INT, i: 1 }],
  };
}

const sameParams = (r: QParams, p: QParams) =>
  Math.fround(r.scale) === Math.fround(p.scale) && r.zp === p.zp;

/** Writes the QDQ graph of a QOperator one; see the module comment. */
export class QdqWriter {
  /** Nodes of the new graph, in order. */
  readonly out: NodeProto[] = [];
  /** Initializers the new graph adds to the kept ones. */
  readonly added: TensorProto[] = [];
  /** The fc weight transposes, to run once nothing can fall back any more. */
  readonly transposes: (() => void)[] = [];
  /** Identity layers added to round a tensor that a float op reads. */
  identities = 0;
  readonly #inits: Map<string, TensorProto>;
  readonly #options: WriterOptions;
  readonly #reps = new Map<string, Rep>();
  /** Float tensor holding v -> the one holding DQ(Q(v)), once made. */
  readonly #exactOf = new Map<string, string>();
  readonly #rank = new Map<string, number>();
  readonly #dim1 = new Map<string, number>();
  readonly #graphOutputs: Set<string>;
  /** Reshape to [1, -1] is Flatten only when every input has a batch of 1. */
  readonly #batchOne: boolean;
  readonly #readers = new Map<string, NodeProto[]>();
  /** QLinearAdd nodes already folded into the Gemm before them. */
  readonly #skip = new Set<NodeProto>();
  readonly #transposed = new Set<string>();
  /** Outputs of dropped no-op nodes (float Dropout) -> the tensor they pass on. */
  readonly #renamed = new Map<string, string>();
  #fresh = 0;

  constructor(
    graph: onnxProto.onnx.IGraphProto,
    inits: Map<string, TensorProto>,
    options: WriterOptions,
  ) {
    this.#inits = inits;
    this.#options = options;
    for (const v of graph.input ?? []) {
      const dims = v.type?.tensorType?.shape?.dim ?? [];
      this.#rank.set(v.name!, dims.length);
      const d = dims[1]?.dimValue;
      if (d !== undefined && d !== null && Number(d) > 0) this.#dim1.set(v.name!, Number(d));
    }
    this.#graphOutputs = new Set((graph.output ?? []).map((v) => v.name!));
    this.#batchOne = (graph.input ?? []).filter((v) => !inits.has(v.name!)).every((v) =>
      Number(v.type?.tensorType?.shape?.dim?.[0]?.dimValue ?? 0) === 1
    );
    for (const n of graph.node ?? []) {
      for (const i of n.input ?? []) {
        if (i) this.#readers.set(i, [...(this.#readers.get(i) ?? []), n]);
      }
    }
  }

  /** Writes one node of the original graph (in graph order). */
  visit(original: NodeProto): void {
    if (this.#skip.has(original)) return;
    const n = this.#renamed.size === 0
      ? original
      : { ...original, input: (original.input ?? []).map((i) => this.#renamed.get(i) ?? i) };
    const op = n.opType!;
    const domain = n.domain ?? "";
    if (domain !== "" && !(domain === "com.microsoft" && op === "QLinearAdd")) {
      throw new Unsupported(`${n.name} is ${domain}.${op}`);
    }
    switch (op) {
      case "QuantizeLinear":
        return this.#quantizeLinear(n);
      case "DequantizeLinear":
        return this.#dequantizeLinear(n);
      case "QLinearConv":
        return this.#qlinearConv(n);
      case "QLinearMatMul":
        return this.#qlinearMatMul(n);
      case "MaxPool":
      case "Relu":
      case "Flatten":
      case "Reshape":
      case "Dropout":
        return this.#layoutOp(n);
      default:
        return this.#floatOp(n);
    }
  }

  /** Graph outputs that were DequantizeLinear outputs: rounded under their own name. */
  roundGraphOutputs(outputs: onnxProto.onnx.IValueInfoProto[]): void {
    for (const o of outputs) {
      const r = this.#reps.get(o.name!);
      if (!r) continue;
      if (r.quantized) throw new Unsupported(`the graph returns the uint8 tensor ${o.name}`);
      this.#exact(r, { name: o.name }, o.name!);
    }
  }

  // ---------------------------------------------------------------- one step per op kind

  #quantizeLinear(n: NodeProto): void {
    const y = n.output![0];
    if (
      attribute(n, "axis") !== undefined && this.#constValues(n.input![1], "").values.length !== 1
    ) {
      throw new Unsupported(`${n.name} quantizes per axis`);
    }
    const p = this.#qparams(n, 1, 2);
    const x = n.input![0];
    const from = this.#reps.get(x);
    if (from && sameParams(from, p)) {
      this.#reps.set(y, { ...from, quantized: true });
      return;
    }
    this.#reps.set(y, {
      name: from ? this.#exact(from, n) : x,
      ...p,
      exact: false,
      rank: from?.rank ?? this.#rank.get(x),
      dim1: from?.dim1 ?? this.#dim1.get(x),
      quantized: true,
    });
  }

  #dequantizeLinear(n: NodeProto): void {
    if (this.#inits.has(n.input![0])) {
      this.out.push(n); // a constant: onnxruntime (or folding) deals with it as before
      return;
    }
    const r = this.#repOf(n.input![0], n);
    if (!sameParams(r, this.#qparams(n, 1, 2))) {
      throw new Unsupported(`${n.name} dequantizes with other parameters than its input's`);
    }
    this.#reps.set(n.output![0], { ...r, quantized: false });
  }

  /** x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B -> Q/DQ(x) -> Conv(DQ(W), DQ(B)). */
  #qlinearConv(n: NodeProto): void {
    const y = n.output![0];
    const { x } = this.#layerInput(n, n.input![0], this.#qparams(n, 1, 2));
    const w = this.#int8Weights(n, 3, 5);
    const m = w.dims[0];
    const ws = this.#constValues(n.input![4], `the weight scale of ${n.name}`).values;
    if (w.dims.length !== 4 || (ws.length !== 1 && ws.length !== m)) {
      throw new Unsupported(`${n.name} is not a 2-D convolution with per-channel scales`);
    }
    const wName = w.values ? this.#unique(`${n.input![3]}_s8`) : n.input![3];
    if (w.values) this.added.push(rawTensor(wName, DT.INT8, w.dims, w.values));
    const wsName = this.#unique(`${n.input![3]}_scale`);
    this.added.push(scalarTensor(wsName, DT.FLOAT, ws, [ws.length]));
    const wdq = this.#unique(`${n.input![3]}_dq`);
    this.out.push(dequantizePerChannel(wdq, wName, wsName));
    const inputs = [x, wdq];
    if (n.input![8]) inputs.push(this.#convBias(n, m, ws));
    const name = this.#unique(`${y}_f`);
    this.out.push({
      opType: "Conv",
      name: n.name ?? name,
      input: inputs,
      output: [name],
      attribute: n.attribute,
    });
    const p = this.#qparams(n, 6, 7);
    this.#reps.set(y, { name, ...p, exact: false, rank: 4, dim1: m, quantized: true });
  }

  /** The int32 bias in steps of s_x * s_w[m], as QLinearConv adds it to the sums. */
  #convBias(n: NodeProto, m: number, ws: ArrayLike<number>): string {
    const xs = this.#qparams(n, 1, 2).scale;
    const b = this.#constValues(n.input![8], `the bias of ${n.name}`);
    if (b.t.dataType !== DT.INT32) throw new Unsupported(`${n.name} has a non-int32 bias`);
    const bs = this.#unique(`${n.input![8]}_scale`), bdq = this.#unique(`${n.input![8]}_dq`);
    const scales = Float32Array.from(
      { length: m },
      (_, i) => Math.fround(xs * ws[ws.length === 1 ? 0 : i]),
    );
    this.added.push(scalarTensor(bs, DT.FLOAT, scales, [m]));
    this.out.push(dequantizePerChannel(bdq, n.input![8], bs));
    return bdq;
  }

  /**
   * a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp -> Q/DQ(a) -> Gemm(DQ(B^T)), with
   * the bias of a QLinearAdd that alone reads the product folded in.
   */
  #qlinearMatMul(n: NodeProto): void {
    const y = n.output![0];
    const a = this.#repOf(n.input![0], n);
    if (a.rank !== 2) throw new Unsupported(`${n.name} multiplies a tensor of rank ${a.rank}`);
    const { x } = this.#layerInput(n, n.input![0], this.#qparams(n, 1, 2));
    const w = this.#int8Weights(n, 3, 5);
    if (w.dims.length !== 2) throw new Unsupported(`${n.name} has a batched weight`);
    const [k, nOut] = w.dims;
    const ws = this.#constValues(n.input![4], `the weight scale of ${n.name}`).values;
    if (ws.length !== 1 && ws.length !== nOut) {
      throw new Unsupported(`${n.name} has a weight scale of ${ws.length} values`);
    }
    const inputs = [x, this.#transposedWeights(n, w, k, nOut, ws)];
    let outName = y;
    let p = this.#qparams(n, 6, 7);
    const next = this.#readers.get(y) ?? [];
    if (next.length === 1 && next[0].opType === "QLinearAdd" && !this.#graphOutputs.has(y)) {
      const add = next[0];
      const bias = this.#foldedBias(add, y, p, nOut);
      outName = add.output![0];
      this.#skip.add(add);
      if (this.#options.exact) return this.#roundedBiasAdd(n, inputs, p, nOut, bias, add);
      inputs.push(bias);
      p = this.#qparams(add, 6, 7);
    }
    const name = this.#unique(`${outName}_f`);
    this.out.push(gemm(n.name ?? name, inputs, name));
    this.#reps.set(outName, { name, ...p, exact: false, rank: 2, dim1: nOut, quantized: true });
  }

  /**
   * Our Gemm kernel reads W as [N, K] (transB): the [K, N] weights are transposed once,
   * after the whole graph is accepted (in place, the caller's bytes may change).
   * Returns the DequantizeLinear output of the transposed weights.
   */
  #transposedWeights(
    n: NodeProto,
    w: Weights,
    k: number,
    nOut: number,
    ws: ArrayLike<number>,
  ): string {
    if (this.#transposed.has(n.input![3])) throw new Unsupported(`${n.name} shares its weights`);
    this.#transposed.add(n.input![3]);
    const src = w.values ?? int8View(w.t);
    const wt = w.values || !this.#options.inPlace ? new Int8Array(src.length) : src;
    this.transposes.push(() => transposeInto(src, k, nOut, wt));
    const wName = this.#unique(`${n.input![3]}_t`), wsName = this.#unique(`${n.input![3]}_scale`);
    this.added.push(
      rawTensor(wName, DT.INT8, [nOut, k], wt),
      scalarTensor(wsName, DT.FLOAT, ws, [ws.length]),
    );
    const wdq = this.#unique(`${n.input![3]}_dq`);
    this.out.push(dequantizePerChannel(wdq, wName, wsName));
    return wdq;
  }

  /** QLinearAdd(y, bias): the bias as a float initializer for the Gemm (its name). */
  #foldedBias(add: NodeProto, y: string, p: QParams, nOut: number): string {
    const [ai, , , bi] = add.input!;
    const [biasIn, sIdx, zIdx] = ai === y ? [bi, 4, 5] : [ai, 1, 2];
    const inP = ai === y ? this.#qparams(add, 1, 2) : this.#qparams(add, 4, 5);
    if (!sameParams(p, inP)) {
      throw new Unsupported(`${add.name} reads ${y} with other quantization parameters`);
    }
    const bias = this.#constValues(biasIn, `the second input of ${add.name}`).values;
    if (bias.length !== nOut) throw new Unsupported(`${add.name} is not a bias add`);
    const bp = this.#qparams(add, sIdx, zIdx);
    const bName = this.#unique(`${biasIn}_f`);
    this.added.push(rawTensor(
      bName,
      DT.FLOAT,
      [nOut],
      Float32Array.from(bias, (v) => Math.fround((v - bp.zp) * bp.scale)),
    ));
    return bName;
  }

  /** With `exact`, as onnxruntime: round the product, then add the bias with an identity Gemm. */
  #roundedBiasAdd(
    n: NodeProto,
    inputs: string[],
    p: QParams,
    nOut: number,
    bias: string,
    add: NodeProto,
  ): void {
    const name = this.#unique(`${n.output![0]}_f`);
    this.out.push(gemm(n.name ?? name, inputs, name));
    const mm: Rep = { name, ...p, exact: false, rank: 2, dim1: nOut, quantized: true };
    const sum = this.#identity(mm, n, { bias });
    this.#reps.set(add.output![0], { ...mm, name: sum, ...this.#qparams(add, 6, 7) });
  }

  /**
   * MaxPool, Relu, Flatten/Reshape (to 2-D), Dropout: monotone or layout-only, they
   * commute with the pending rounding and run on the float v. Float ones pass as they are.
   */
  #layoutOp(n: NodeProto): void {
    const op = n.opType!;
    const [y] = n.output ?? [];
    const r = this.#reps.get(n.input![0]);
    const mask = n.output?.[1];
    if (
      !r && op === "Dropout" && !this.#graphOutputs.has(y) && !(mask && this.#readers.has(mask))
    ) {
      this.#renamed.set(y, n.input![0]); // inference: the identity, and not a kernel
      return;
    }
    if (!r) {
      this.out.push(n);
      trackShape(n, this.#rank, this.#dim1);
      return;
    }
    if (op === "MaxPool" && (n.output ?? []).length > 1) {
      throw new Unsupported(`${n.name} also returns indices`);
    }
    const name = this.#unique(`${y}_f`);
    const flat = this.#flattens(n);
    if (op === "Dropout" || (flat && r.rank === 2)) {
      this.#reps.set(y, r);
      return;
    }
    this.out.push(
      flat
        ? {
          opType: "Flatten",
          name: n.name,
          input: [r.name],
          output: [name],
          attribute: [{ name: "axis", type: INT, i: 1 }],
        }
        : { ...n, input: [r.name], output: [name] },
    );
    const features = flat ? (r.rank === 2 ? r.dim1 : undefined) : r.dim1;
    this.#reps.set(y, { ...r, name, rank: flat ? 2 : r.rank, dim1: features });
  }

  /** Whether a Flatten/Reshape node flattens to [N, rest]; throws for other reshapes. */
  #flattens(n: NodeProto): boolean {
    const op = n.opType!;
    let flat = op === "Flatten" || op === "Reshape";
    if (op === "Reshape") flat = reshapeIsFlatten(n, this.#inits, this.#batchOne);
    if (op === "Flatten" && intAttr(n, "axis", 1) !== 1) flat = false;
    if ((op === "Flatten" || op === "Reshape") && !flat) {
      throw new Unsupported(`${n.name} reshapes a quantized tensor other than flattening it`);
    }
    return flat;
  }

  /** A float op (LRN, Softmax, ...): it reads DQ(t_q) exactly. */
  #floatOp(n: NodeProto): void {
    const op = n.opType!;
    if (QOPERATOR_OPS.has(op)) throw new Unsupported(`${n.name} (${op}) is not supported`);
    const input = (n.input ?? []).map((i) => {
      const r = i ? this.#reps.get(i) : undefined;
      if (!r) return i;
      if (r.quantized) throw new Unsupported(`${n.name} (${op}) reads a uint8 tensor`);
      return this.#exact(r, n);
    });
    this.out.push({ ...n, input });
    trackShape(n, this.#rank, this.#dim1, this.#reps);
  }

  // ---------------------------------------------------------------- shared pieces

  #unique(base: string): string {
    return `${base}__qdq${this.#fresh++}`;
  }

  #constTensor(name: string | null | undefined, what: string): TensorProto {
    const t = name ? this.#inits.get(name) : undefined;
    if (!t) throw new Unsupported(`${what} is not a constant`);
    return t;
  }

  /** A small constant's values (a copy: not for weights). */
  #constValues(name: string | null | undefined, what: string) {
    const t = this.#constTensor(name, what);
    return { t, values: tensorValues(t) };
  }

  /** A per-tensor activation scale and uint8 zero point (absent zero point: 0). */
  #qparams(n: NodeProto, si: number, zi: number): QParams {
    const s = this.#constValues(n.input![si], `the scale of ${n.name}`).values;
    if (s.length !== 1) throw new Unsupported(`${n.name} has a per-axis activation scale`);
    const zName = n.input![zi];
    if (!zName) return { scale: s[0], zp: 0 };
    const z = this.#constValues(zName, `the zero point of ${n.name}`);
    if (z.t.dataType !== DT.UINT8) {
      throw new Unsupported(`${n.name} has int8 activations (our kernels take uint8)`);
    }
    return { scale: s[0], zp: z.values[0] };
  }

  #repOf(name: string, n: NodeProto): Rep {
    const r = this.#reps.get(name);
    if (!r) throw new Unsupported(`${n.name} reads ${name}, which no QuantizeLinear made`);
    return r;
  }

  #paramInits(base: string, p: QParams): [string, string] {
    const s = this.#unique(`${base}_scale`), z = this.#unique(`${base}_zero_point`);
    this.added.push(
      scalarTensor(s, DT.FLOAT, [p.scale], []),
      scalarTensor(z, DT.UINT8, [p.zp], []),
    );
    return [s, z];
  }

  /** Q -> DQ of `r` with its own parameters, for one int8 layer to absorb. */
  #qdq(r: Rep): string {
    const [s, z] = this.#paramInits(r.name, r);
    const q = this.#unique(`${r.name}_q`), dq = this.#unique(`${r.name}_dq`);
    this.out.push(
      { opType: "QuantizeLinear", name: q, input: [r.name, s, z], output: [q] },
      { opType: "DequantizeLinear", name: dq, input: [q, s, z], output: [dq] },
    );
    return dq;
  }

  /**
   * An identity layer on Q -> DQ of `r`: its output is DQ(t_q) exactly (plus `bias`, for
   * a 2-D tensor), named `target` when given.
   */
  #identity(r: Rep, n: NodeProto, o: { target?: string; bias?: string } = {}): string {
    const c = r.dim1;
    if (!c || (r.rank !== 4 && r.rank !== 2)) {
      throw new Unsupported(`${n.name} reads a quantized tensor of unknown shape in float`);
    }
    if (r.rank === 2 && c > MAX_IDENTITY_GEMM && !o.bias) {
      throw new Unsupported(`${n.name} reads ${c} quantized features in float`);
    }
    this.identities++;
    const x = this.#qdq(r);
    const name = o.target ?? this.#unique(`${r.name}_exact`);
    const w = this.#unique(`${r.name}_identity`), ws = this.#unique(`${r.name}_identity_scale`);
    const wq = this.#unique(`${r.name}_identity_dq`);
    this.added.push(scalarTensor(ws, DT.FLOAT, [1], []));
    this.out.push({ opType: "DequantizeLinear", name: wq, input: [w, ws], output: [wq] });
    if (r.rank === 4) {
      // y[c] = 1 * (q[c] - z) * (s * 1): a depthwise 1x1 Conv, one channel per group.
      this.added.push(rawTensor(w, DT.INT8, [c, 1, 1, 1], new Int8Array(c).fill(1)));
      this.out.push({
        opType: "Conv",
        name,
        input: [x, wq],
        output: [name],
        attribute: [
          { name: "group", type: INT, i: c },
          { name: "kernel_shape", type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 1] },
        ],
      });
    } else {
      const eye = new Int8Array(c * c);
      for (let i = 0; i < c; i++) eye[i * c + i] = 1;
      this.added.push(rawTensor(w, DT.INT8, [c, c], eye));
      this.out.push(gemm(name, o.bias ? [x, wq, o.bias] : [x, wq], name));
    }
    return name;
  }

  /** A float tensor holding DQ(t_q) exactly, named `target` when given. */
  #exact(r: Rep, n: NodeProto, target?: string): string {
    if (r.exact && !target) return r.name;
    const known = this.#exactOf.get(r.name);
    if (known && !target) return known;
    let name: string;
    if (!this.#options.exact && !target && r.rank === 4 && r.zp === 0) {
      // Unrounded: the zero point 0 clamp is a ReLU (our conv kernel absorbs it).
      name = this.#unique(`${r.name}_relu`);
      this.out.push({ opType: "Relu", name, input: [r.name], output: [name] });
    } else name = this.#identity(r, n, { target });
    if (!target) this.#exactOf.set(r.name, name);
    return name;
  }

  /** The layer's input: Q -> DQ of the producer's tensor, with matching parameters. */
  #layerInput(n: NodeProto, x: string, p: QParams): { x: string; r: Rep } {
    const r = this.#repOf(x, n);
    if (!r.quantized) throw new Unsupported(`${n.name} reads a float tensor`);
    if (!sameParams(r, p)) {
      throw new Unsupported(`${n.name} reads ${x} with other quantization parameters`);
    }
    return { x: this.#qdq(r), r };
  }

  /** int8 weights with zero point 0 (uint8 with zero point 128 shifted to int8). */
  #int8Weights(n: NodeProto, wi: number, zi: number): Weights {
    const t = this.#constTensor(n.input![wi], `the weights of ${n.name}`);
    const zName = n.input![zi];
    const zeros = zName
      ? this.#constValues(zName, `the weight zero point of ${n.name}`).values
      : [0];
    const dims = (t.dims ?? []).map(Number);
    if (t.dataType === DT.INT8 && Array.from(zeros).every((v) => v === 0)) {
      return { t, dims, values: undefined };
    }
    if (t.dataType === DT.UINT8 && Array.from(zeros).every((v) => v === 128)) {
      const u = tensorValues(t) as Uint8Array;
      return { t, dims, values: Int8Array.from(u, (v) => v - 128) };
    }
    throw new Unsupported(`${n.name} has weights with nonzero zero points`);
  }
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
