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
import { decodeModel, onnx } from "./_onnx.ts";

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
}

/** A node we run with our own kernel. */
export interface KernelPart {
  kind: "kernel";
  opType: string;
  node: NodeProto;
  inputs: string[];
  outputs: string[];
}

/** One step of a partitioned model. */
export type Part = GraphPart | KernelPart;

/** A partitioned model. */
export interface Partition {
  parts: Part[];
  /** The original graph's input and output names. */
  inputs: string[];
  outputs: string[];
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
export function partitionModel(bytes: Uint8Array, customOps: ReadonlySet<string>): Partition {
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

  // Group consecutive non-custom nodes; each custom node stands alone.
  const groups: { custom: boolean; nodes: NodeProto[] }[] = [];
  for (const node of graph.node ?? []) {
    const custom = (node.domain ?? "") === "" && customOps.has(node.opType!);
    const last = groups.at(-1);
    if (!custom && last && !last.custom) last.nodes.push(node);
    else groups.push({ custom, nodes: [node] });
  }

  if (groups.every((g) => !g.custom)) {
    // Nothing to cut: keep the original bytes rather than re-encoding them.
    const ops = (graph.node ?? []).map((n) => n.opType!);
    return {
      parts: [{ kind: "graph", bytes, inputs: graphInputs, outputs: graphOutputs, ops }],
      inputs: graphInputs,
      outputs: graphOutputs,
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
      const node = group.nodes[0];
      return { kind: "kernel", opType: node.opType!, node, inputs, outputs };
    }
    const used = new Set(group.nodes.flatMap(reads));
    const sub = onnx.ModelProto.create({
      irVersion: model.irVersion,
      opsetImport: model.opsetImport,
      producerName: "alexnet-edge partition",
      graph: {
        name: `${graph.name ?? "graph"}_part${i}`,
        node: group.nodes,
        initializer: [...used].filter((n) => initializers.has(n)).map((n) => initializers.get(n)!),
        input: inputs.map(typeOf),
        output: outputs.map(typeOf),
      },
    });
    return {
      kind: "graph",
      bytes: onnx.ModelProto.encode(sub).finish(),
      inputs,
      outputs,
      ops: group.nodes.map((n) => n.opType!),
    };
  });
  return { parts, inputs: graphInputs, outputs: graphOutputs };
}
