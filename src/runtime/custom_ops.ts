/**
 * The kernel registry: op types we run with our own kernels instead of
 * onnxruntime's, keyed by ONNX op type. LRN is the first entry.
 *
 * @module
 */
import type onnxProto from "onnx-proto";
import type { KernelPart } from "../model/partition.ts";
import { createLrnKernel } from "./kernels/mod.ts";
import { KernelHelpers, qdqConvFactoryFor, qdqGemmFactoryFor } from "./qdq_ops.ts";
import { instantiateQ, type QExports } from "./kernels/_q_wasm.ts";
import { flattenFactory, maxPoolFactory, reluFactory, softmaxFactory } from "./float_ops.ts";

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

/** LRN as glue: ours only when the whole graph runs on our kernels. */
const lrnGlueFactory: KernelFactory = (part) => lrnFactory(part);
lrnGlueFactory.wholeGraphOnly = true;

/** Options of {@linkcode kernelRegistry}. */
export interface KernelRegistryOptions {
  /**
   * Threads for the int8 Conv and Gemm kernels (default 1): with more, each layer's
   * output channels are split across helper Workers (kernels/split.ts), started on
   * the first layer and stopped when the last kernel is released.
   */
  threads?: number;
}

/**
 * The registry for the chosen modes: LRN with `lrn: "custom"`, QDQ Gemm and
 * Conv with `int8: "custom"`. With `int8: "custom"`, MaxPool, Flatten, Relu,
 * Softmax (and LRN, whatever `lrn` says) join as whole-graph-only kernels: a
 * quantized AlexNet then runs as one chain of our kernels, with no onnxruntime
 * session at all (no round trips, and onnxruntime-web's module is never loaded).
 *
 * @example
 * ```ts
 * kernelRegistry("custom").has("LRN"); // true
 * ```
 */
export function kernelRegistry(
  lrn: LrnMode,
  int8: Int8Mode = "ort",
  options: KernelRegistryOptions = {},
): KernelRegistry {
  const entries: [string, KernelFactory][] = [];
  if (lrn === "custom") entries.push(["LRN", lrnFactory]);
  if (int8 === "custom") {
    const threads = options.threads ?? 1;
    const helpers = threads > 1 ? new KernelHelpers(threads) : undefined;
    // One instance for the model's int8 layers: the per-call blocks are reused layer to
    // layer instead of each kernel keeping its own (kernels/_q_wasm.ts).
    let instance: Promise<QExports> | undefined;
    const shared = () => {
      instance ??= instantiateQ("Cannot load the int8 kernels").catch((e) => {
        instance = undefined;
        throw e;
      });
      return instance;
    };
    entries.push(
      ["Gemm", qdqGemmFactoryFor(helpers, shared)],
      ["Conv", qdqConvFactoryFor(helpers, shared)],
      ["MaxPool", maxPoolFactory],
      ["Flatten", flattenFactory],
      ["Relu", reluFactory],
      ["Softmax", softmaxFactory],
    );
    if (lrn !== "custom") entries.push(["LRN", lrnGlueFactory]);
  }
  return new Map(entries);
}
