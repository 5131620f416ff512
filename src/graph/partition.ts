/**
 * Splits an ONNX model at every node we run ourselves (onnxruntime-web cannot
 * register custom operators from JS; onnxruntime issue #15374), into
 * consecutive parts: ONNX sub-models, each valid on its own and holding only
 * the initializers it needs, and the custom nodes between them.
 *
 * Nodes keep the graph's order, which ONNX requires to be topological, so a
 * part only reads tensors that earlier parts (or the graph inputs) produced.
 * Subgraph attributes (If/Loop bodies) are not looked into.
 *
 * @module
 */
import type onnxProto from "onnx-proto";
import { intAttr } from "./attributes.ts";
import { decodeModel, floatTensor, onnx, tensorValues } from "./onnx.ts";

type NodeProto = onnxProto.onnx.INodeProto;
type ValueInfo = onnxProto.onnx.IValueInfoProto;

/** An ONNX sub-model: run it with onnxruntime. */
export interface GraphPart {
  kind: "graph";
  /** Serialized ONNX model of this part. */
  bytes: Uint8Array;
  /** Tensors it reads from the graph inputs or from earlier parts. */
  inputs: string[];
  /** Tensors it produces that later parts or the graph outputs need. */
  outputs: string[];
  /** Operators it holds, in order (for logs and tests). */
  ops: string[];
  /** Whether constant DequantizeLinear nodes were folded into float weights here. */
  folded: boolean;
}

/** A node we run with our own kernel, with the nodes it absorbed. */
export interface KernelPart {
  kind: "kernel";
  opType: string;
  /** The node the kernel implements. */
  node: NodeProto;
  /**
   * With `fuseQdq` for its node: the DequantizeLinear nodes feeding its weights and bias
   * from initializers, the QuantizeLinear -> DequantizeLinear pair on its data
   * input, and a ReLU that alone consumes its output, in graph order.
   */
  absorbed: NodeProto[];
  /** The initializers those nodes read, by name. */
  initializers: Map<string, onnxProto.onnx.ITensorProto>;
  inputs: string[];
  outputs: string[];
}

/** Options of {@linkcode partitionModel}. */
export interface PartitionOptions {
  /** Which custom nodes absorb the Q/DQ nodes and ReLU around them (quantized kernels). */
  fuseQdq?: (node: NodeProto) => boolean;
  /**
   * In the ONNX parts, replace DequantizeLinear nodes of constant (initializer)
   * weights by their float values, once at load: onnxruntime-web otherwise
   * dequantizes every weight on every run when it does not fuse the layer.
   */
  foldDequantize?: boolean;
  /** Whether a custom-op node (with what it would absorb) really goes to a kernel. */
  accept?: (part: Pick<KernelPart, "node" | "absorbed" | "initializers">) => boolean;
  /**
   * Custom-op nodes that go to kernels only when, with them, no ONNX part is left
   * (MaxPool, Softmax, ... between the int8 layers): then the whole graph runs as a
   * chain of kernels, without onnxruntime; otherwise cutting at them would only add
   * session round trips, so they stay in the ONNX parts.
   */
  wholeGraphOnly?: (node: NodeProto) => boolean;
}

/** One step of a partitioned model. */
export type Part = GraphPart | KernelPart;

/** A partitioned model. */
export interface Partition {
  parts: Part[];
  /** The original graph's input and output names. */
  inputs: string[];
  outputs: string[];
  /** Declared shape of each graph input; symbolic or unknown dims are null. */
  inputShapes: Record<string, (number | null)[]>;
}

const FLOAT = onnx.TensorProto.DataType.FLOAT;

/** Every tensor name a node reads (empty names mark omitted optional inputs). */
function reads(node: NodeProto): string[] {
  return (node.input ?? []).filter((n) => n !== "");
}

/**
 * Splits `model` before and after every node whose op type is in `customOps`
 * (default domain only).
 *
 * @example
 * ```ts
 * const { parts } = partitionModel(bytes, new Set(["LRN"]));
 * parts.map((p) => p.kind); // ["graph", "kernel", "graph", "kernel", "graph"]
 * ```
 */
export function partitionModel(
  bytes: Uint8Array,
  customOps: ReadonlySet<string>,
  options: PartitionOptions = {},
): Partition {
  const model = decodeModel(bytes);
  const graph = model.graph;
  if (!graph) throw new TypeError("Cannot partition the model: it has no graph");
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const valueInfo = new Map<string, ValueInfo>();
  for (const v of [...(graph.valueInfo ?? []), ...(graph.input ?? []), ...(graph.output ?? [])]) {
    valueInfo.set(v.name!, v);
  }
  const graphInputs = (graph.input ?? []).map((v) => v.name!).filter((n) => !initializers.has(n));
  const graphOutputs = (graph.output ?? []).map((v) => v.name!);
  const inputShapes = Object.fromEntries(graphInputs.map((name) => [
    name,
    (valueInfo.get(name)?.type?.tensorType?.shape?.dim ?? []).map((d) =>
      d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue) > 0
        ? Number(d.dimValue)
        : null
    ),
  ]));

  const candidate = (node: NodeProto) => (node.domain ?? "") === "" && customOps.has(node.opType!);
  const fuses = options.fuseQdq ?? (() => false);
  const absorbed = absorbQdq(
    graph.node ?? [],
    (n) => candidate(n) && fuses(n),
    initializers,
    graphOutputs,
  );
  const rejected = new Set<NodeProto>();
  for (const node of (graph.node ?? []).filter(candidate)) {
    const taken = absorbed.get(node) ?? [];
    const used = [node, ...taken].flatMap(reads).filter((n) => initializers.has(n));
    const part = {
      node,
      absorbed: taken,
      initializers: new Map(used.map((n) => [n, initializers.get(n)!])),
    };
    if (options.accept && !options.accept(part)) {
      rejected.add(node);
      absorbed.delete(node);
    }
  }
  const isCustom = (node: NodeProto) => candidate(node) && !rejected.has(node);
  const wholeGraphOnly = options.wholeGraphOnly ?? (() => false);
  const custom = (graph.node ?? []).filter(isCustom);
  const absorbedNodes = new Set([...absorbed.values()].flat());
  const left = (graph.node ?? []).filter((n) => !absorbedNodes.has(n) && !isCustom(n));
  if (left.length > 0 || custom.every(wholeGraphOnly)) {
    for (const node of custom.filter(wholeGraphOnly)) {
      rejected.add(node);
      absorbed.delete(node);
    }
  }
  const taken = new Set([...absorbed.values()].flat());

  // Group consecutive non-custom nodes; each custom node stands alone with what it absorbed.
  const groups: { custom: boolean; nodes: NodeProto[] }[] = [];
  for (const node of graph.node ?? []) {
    if (taken.has(node)) continue;
    const custom = isCustom(node);
    const last = groups.at(-1);
    if (!custom && last && !last.custom) last.nodes.push(node);
    else groups.push({ custom, nodes: custom ? [node, ...(absorbed.get(node) ?? [])] : [node] });
  }

  if (groups.every((g) => !g.custom)) {
    // Nothing to cut: keep the original bytes rather than re-encoding them.
    const ops = (graph.node ?? []).map((n) => n.opType!);
    return {
      parts: [{
        kind: "graph",
        bytes,
        inputs: graphInputs,
        outputs: graphOutputs,
        ops,
        folded: false,
      }],
      inputs: graphInputs,
      outputs: graphOutputs,
      inputShapes,
    };
  }

  // Which tensors each group needs later: a group's outputs are what it
  // produces and a later group (or the graph output) reads.
  const laterReads: Set<string>[] = [];
  let acc = new Set(graphOutputs);
  for (let i = groups.length - 1; i >= 0; i--) {
    laterReads[i] = acc;
    acc = new Set([...acc, ...groups[i].nodes.flatMap(reads)]);
  }

  const typeOf = (name: string): ValueInfo =>
    valueInfo.get(name) ?? { name, type: { tensorType: { elemType: FLOAT } } };

  const parts: Part[] = groups.map((group, i) => {
    const produced = new Set(group.nodes.flatMap((n) => n.output ?? []));
    const inputs = [...new Set(group.nodes.flatMap(reads))].filter((n) =>
      !produced.has(n) && !initializers.has(n)
    );
    const outputs = [...produced].filter((n) => laterReads[i].has(n));
    if (group.custom) {
      const [node, ...rest] = group.nodes;
      const used = group.nodes.flatMap(reads).filter((n) => initializers.has(n));
      return {
        kind: "kernel",
        opType: node.opType!,
        node,
        absorbed: rest,
        initializers: new Map(used.map((n) => [n, initializers.get(n)!])),
        inputs,
        outputs,
      };
    }
    let nodes = group.nodes;
    const folded: onnxProto.onnx.ITensorProto[] = [];
    if (options.foldDequantize) {
      nodes = nodes.filter((n) => {
        if (n.opType !== "DequantizeLinear" || !reads(n).every((x) => initializers.has(x))) {
          return true;
        }
        folded.push(foldDequantize(n, initializers));
        return false;
      });
    }
    const used = new Set(nodes.flatMap(reads));
    const sub = onnx.ModelProto.create({
      irVersion: model.irVersion,
      opsetImport: model.opsetImport,
      producerName: "alexnet-edge partition",
      graph: {
        name: `${graph.name ?? "graph"}_part${i}`,
        node: nodes,
        initializer: [
          ...[...used].filter((n) => initializers.has(n)).map((n) => initializers.get(n)!),
          ...folded.filter((t) => used.has(t.name!)),
        ],
        input: inputs.map(typeOf),
        output: outputs.map(typeOf),
      },
    });
    return {
      kind: "graph",
      bytes: onnx.ModelProto.encode(sub).finish(),
      inputs,
      outputs,
      ops: nodes.map((n) => n.opType!),
      folded: folded.length > 0,
    };
  });
  return { parts, inputs: graphInputs, outputs: graphOutputs, inputShapes };
}

/**
 * For each custom node: the DequantizeLinear nodes that feed it from
 * initializers only, the QuantizeLinear -> DequantizeLinear pair on its first
 * input, and a Relu after it — each only when nothing else reads its output.
 */
function absorbQdq(
  nodes: NodeProto[],
  isCustom: (n: NodeProto) => boolean,
  initializers: Map<string, unknown>,
  graphOutputs: string[],
): Map<NodeProto, NodeProto[]> {
  const producer = new Map<string, NodeProto>();
  const readers = new Map<string, number>();
  for (const n of nodes) {
    for (const o of n.output ?? []) producer.set(o, n);
    for (const i of reads(n)) readers.set(i, (readers.get(i) ?? 0) + 1);
  }
  for (const o of graphOutputs) readers.set(o, (readers.get(o) ?? 0) + 1);
  const soleReader = (tensor: string) => readers.get(tensor) === 1;
  const result = new Map<NodeProto, NodeProto[]>();
  for (const n of nodes) {
    if (!isCustom(n)) continue;
    const taken: NodeProto[] = [];
    reads(n).forEach((input, i) => {
      const p = producer.get(input);
      if (!p || p.opType !== "DequantizeLinear" || !soleReader(input)) return;
      if (reads(p).every((x) => initializers.has(x))) taken.push(p);
      else if (i === 0) {
        const q = producer.get(p.input![0]);
        const paramsConst = reads(p).slice(1).every((x) => initializers.has(x));
        if (q?.opType === "QuantizeLinear" && soleReader(p.input![0]) && paramsConst) {
          taken.push(q, p);
        }
      }
    });
    const out = n.output![0];
    const next = nodes.find((m) => m.opType === "Relu" && m.input![0] === out);
    if (next && soleReader(out)) taken.push(next);
    result.set(n, taken);
  }
  return result;
}

/**
 * DequantizeLinear of constant tensors, computed once: y = f32((x - zp[c]) * s[c])
 * with c the index along `axis` (default 1) for per-axis scales, as ONNX defines it.
 */
function foldDequantize(
  n: NodeProto,
  initializers: Map<string, onnxProto.onnx.ITensorProto>,
): onnxProto.onnx.ITensorProto {
  const [xT, sT, zT] = reads(n).map((name) => initializers.get(name)!);
  const x = tensorValues(xT), scale = tensorValues(sT), zero = zT ? tensorValues(zT) : undefined;
  const dims = (xT.dims ?? []).map(Number);
  const axis = (intAttr(n, "axis", 1) + dims.length) % Math.max(1, dims.length);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channels = scale.length;
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = channels === 1 ? 0 : Math.floor(i / inner) % channels;
    y[i] = Math.fround((x[i] - (zero ? zero[c] : 0)) * scale[c]);
  }
  return floatTensor(n.output![0], dims, y);
}
