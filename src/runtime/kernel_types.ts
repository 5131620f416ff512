/**
 * The contract between the graph runner and our kernels: a tensor, a kernel bound to a
 * node, the factories that make them. Its own file so the op families (float_ops,
 * qdq_ops) and the registry that lists them import it one way.
 *
 * @module
 */
import type { KernelPart } from "../graph/partition.ts";

/** A float32 tensor as our kernels see it. */
export interface TensorValue {
  data: Float32Array;
  dims: readonly number[];
}

/** A kernel bound to one graph node. Not reentrant: callers run one at a time. */
export interface CustomKernel {
  /** Computes the node's outputs. Output buffers may be reused by the next call. */
  run(inputs: TensorValue[]): TensorValue[];
  /** Frees what the kernel holds (instances, helper threads); optional. */
  release?(): void;
}

/**
 * Makes the kernel for one node (reads its attributes and weights once).
 * `accepts` says which nodes of its op type it takes (default: all).
 */
export type KernelFactory = ((part: KernelPart) => Promise<CustomKernel>) & {
  accepts?: (part: Pick<KernelPart, "node" | "absorbed" | "initializers">) => boolean;
  /** True for quantized kernels that take over the Q/DQ nodes around their node. */
  fusesQdq?: boolean;
  /**
   * True for float glue (MaxPool, Softmax, ...): taken only when then every node of the
   * graph runs on our kernels (src/model/partition.ts, `wholeGraphOnly`).
   */
  wholeGraphOnly?: boolean;
};

/**
 * Makes one kernel for a run of kernel parts, each feeding only the next, from the
 * longest prefix it can take (at least two parts): undefined when it takes none.
 */
export type ChainFactory = (
  parts: KernelPart[],
) => Promise<{ kernel: CustomKernel; taken: number } | undefined>;

/** Op type -> kernel factory; `chain`, when set, fuses runs of kernels into one step. */
export type KernelRegistry = ReadonlyMap<string, KernelFactory> & { readonly chain?: ChainFactory };
