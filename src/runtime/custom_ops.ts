/**
 * The kernel registry: op types we run with our own kernels instead of
 * onnxruntime's, keyed by ONNX op type. LRN is the first entry.
 *
 * @module
 */
import type onnxProto from "onnx-proto";
import type { KernelPart } from "../model/partition.ts";
import { createLrnKernel } from "./kernels/mod.ts";
import { qdqConvFactory, qdqGemmFactory } from "./qdq_ops.ts";

/** A float32 tensor as our kernels see it. */
export interface TensorValue {
  data: Float32Array;
  dims: readonly number[];
}

/** A kernel bound to one graph node. Not reentrant: callers run one at a time. */
export interface CustomKernel {
  /** Computes the node's outputs. Output buffers may be reused by the next call. */
  run(inputs: TensorValue[]): TensorValue[];
}

/**
 * Makes the kernel for one node (reads its attributes and weights once).
 * `accepts` says which nodes of its op type it takes (default: all).
 */
export type KernelFactory = ((part: KernelPart) => Promise<CustomKernel>) & {
  accepts?: (part: Pick<KernelPart, "node" | "absorbed" | "initializers">) => boolean;
  /** True for quantized kernels that take over the Q/DQ nodes around their node. */
  fusesQdq?: boolean;
};

/** Op type -> kernel factory. */
export type KernelRegistry = ReadonlyMap<string, KernelFactory>;

function floatAttr(node: onnxProto.onnx.INodeProto, name: string, fallback: number): number {
  const a = node.attribute?.find((x) => x.name === name);
  return a?.f ?? fallback;
}

/**
 * ONNX LRN on our SIMD WebAssembly kernel, with the ONNX attribute defaults
 * (alpha 1e-4, beta 0.75, bias 1; size is required).
 */
export const lrnFactory: KernelFactory = async ({ node }) => {
  const sizeAttr = node.attribute?.find((a) => a.name === "size");
  if (!sizeAttr?.i) throw new TypeError(`Cannot run LRN node ${node.name}: it has no "size"`);
  const params = {
    size: Number(sizeAttr.i),
    alpha: floatAttr(node, "alpha", 1e-4),
    beta: floatAttr(node, "beta", 0.75),
    bias: floatAttr(node, "bias", 1),
  };
  const kernel = await createLrnKernel();
  let out = new Float32Array(0);
  return {
    run([x]) {
      if (x.dims.length !== 4) {
        throw new RangeError(`Cannot run LRN node ${node.name}: input is not 4-D [N, C, H, W]`);
      }
      // y: [N, C, H, W], written into a buffer kept between calls.
      if (out.length !== x.data.length) out = new Float32Array(x.data.length);
      kernel.run(x.data, x.dims as [number, number, number, number], params, out);
      return [{ data: out, dims: x.dims }];
    },
  };
};

/** Which op types run on our kernels: `custom` swaps in ours, `ort` keeps onnxruntime's. */
export type LrnMode = "custom" | "ort";

/** Whether quantized (QDQ) layers run on our int8 kernels or onnxruntime's. */
export type Int8Mode = "custom" | "ort";

/**
 * The registry for the chosen modes: LRN with `lrn: "custom"`, QDQ Gemm and
 * Conv with `int8: "custom"`.
 *
 * @example
 * ```ts
 * kernelRegistry("custom").has("LRN"); // true
 * ```
 */
export function kernelRegistry(lrn: LrnMode, int8: Int8Mode = "ort"): KernelRegistry {
  const entries: [string, KernelFactory][] = [];
  if (lrn === "custom") entries.push(["LRN", lrnFactory]);
  if (int8 === "custom") entries.push(["Gemm", qdqGemmFactory], ["Conv", qdqConvFactory]);
  return new Map(entries);
}
