/**
 * The graph-side work a backend does once with a model's bytes, in one place:
 * `prepare(bytes, target)` rewrites the graph for the target and cuts it into the
 * parts the runtime runs, and returns that plan. The runtime then only makes
 * sessions and kernels from the plan.
 *
 * - `wasm`: a QOperator int8 file is rewritten to QDQ when our int8 kernels are in
 *   the set (qoperator.ts), then the graph is partitioned at our kernels' ops.
 * - `webgpu`: quantized nodes are rewritten to float (webgpu_dequantize.ts), then
 *   partitioned the same way.
 * - `native`: onnxruntime-node runs the file whole; the plan is the bytes as given.
 *
 * @module
 */
import { forInt8Kernels } from "./qoperator.ts";
import { type Partition, partitionModel, type PartitionOptions } from "./partition.ts";
import { dequantizeForGpu } from "./webgpu_dequantize.ts";

/** Where a model runs: onnxruntime-web's wasm or WebGPU provider, or onnxruntime-node. */
export type Target = "wasm" | "webgpu" | "native";

/**
 * What our kernels take, as the partition needs to know it: the op types they run
 * and how each treats the nodes around it (the runtime's kernel registry says).
 */
export interface KernelSet extends PartitionOptions {
  /** Op types that go to our kernels (default domain). */
  ops: ReadonlySet<string>;
}

/** Options of {@linkcode prepare}. */
export interface PrepareOptions {
  /** Our kernels for `wasm` and `webgpu` (default: none, onnxruntime runs every node). */
  kernels?: KernelSet;
  /**
   * `wasm`: rewrite a QOperator int8 file to the QDQ layout our int8 kernels take
   * whole (default false; anything but a QOperator file passes unchanged).
   */
  int8Kernels?: boolean;
  /**
   * The caller gives `bytes` away: the rewrite may work inside them, and once a
   * rewritten copy holds all the plan needs, their buffer is detached before the
   * partition, which lowers the load's peak memory. Default false.
   */
  release?: boolean;
  /** Lines saying what a rewrite did (or why not). */
  log?: (line: string) => void;
}

/** The plan for onnxruntime-node: the model whole, as given. */
export interface NativePlan {
  target: "native";
  bytes: Uint8Array;
}

/** The plan for onnxruntime-web: the rewritten graph and its parts, in order. */
export interface PartitionedPlan extends Partition {
  target: "wasm" | "webgpu";
  /** The whole graph the parts were cut from: the input bytes when nothing was rewritten. */
  bytes: Uint8Array;
  /** Whether a rewrite for the target changed the graph. */
  rewritten: boolean;
}

/** What {@linkcode prepare} returns for a target. */
export type GraphPlan<T extends Target = Target> = T extends "native" ? NativePlan
  : PartitionedPlan;

/**
 * Rewrites `bytes` for `target` and partitions it at `options.kernels`' ops. Throws
 * (TypeError, protobuf errors) when the model cannot be decoded or has no graph, and
 * for `webgpu` when a quantized op has no float rewrite.
 *
 * @example
 * ```ts
 * import { buildAlexNet } from "../model/alexnet.ts";
 *
 * const plan = await prepare(buildAlexNet({ inputSize: 67 }), "wasm", {
 *   kernels: { ops: new Set(["LRN"]) },
 * });
 * plan.parts.map((p) => p.kind); // ["graph", "kernel", "graph", "kernel", "graph"]
 * ```
 */
export async function prepare<T extends Target>(
  bytes: Uint8Array,
  target: T,
  options: PrepareOptions = {},
): Promise<GraphPlan<T>> {
  if (target === "native") return { target, bytes } as GraphPlan<T>;
  const graph = target === "webgpu" ? forGpu(bytes, options.log) : await forWasm(bytes, options);
  const { ops, ...partition } = options.kernels ?? { ops: new Set<string>() };
  return {
    target: target as "wasm" | "webgpu",
    bytes: graph,
    rewritten: graph !== bytes,
    ...partitionModel(graph, ops, partition),
  } as GraphPlan<T>;
}

/** wasm: QOperator -> QDQ for our int8 kernels; the input freed once a copy replaces it. */
async function forWasm(bytes: Uint8Array, options: PrepareOptions): Promise<Uint8Array> {
  if (!options.int8Kernels) return bytes;
  const graph = await forInt8Kernels(bytes, options.log, { inPlace: options.release });
  if (graph !== bytes && options.release && bytes.buffer instanceof ArrayBuffer) {
    bytes.buffer.transfer(0); // the rewritten copy holds all it needs: free the file now
  }
  return graph;
}

/** webgpu: quantized nodes rewritten to float. */
function forGpu(bytes: Uint8Array, log?: (line: string) => void): Uint8Array {
  const { bytes: graph, nodes } = dequantizeForGpu(bytes);
  if (nodes > 0) log?.(`webgpu: ${nodes} quantize/dequantize nodes rewritten to float`);
  return graph;
}
