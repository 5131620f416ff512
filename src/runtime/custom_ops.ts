/**
 * The kernel registry: op types we run with our own kernels instead of
 * onnxruntime's, keyed by ONNX op type. LRN is the first entry.
 *
 * @module
 */
import type onnxProto from "onnx-proto";
import { floatAttr, intAttr, type KernelPart } from "../graph/mod.ts";
import { createLrnKernel } from "./kernels/mod.ts";
import type { ChainFactory, KernelFactory, KernelRegistry } from "./kernel_types.ts";

export type {
  ChainFactory,
  CustomKernel,
  KernelFactory,
  KernelRegistry,
  TensorValue,
} from "./kernel_types.ts";
import {
  KernelHelpers,
  qdqConvFactoryFor,
  qdqGemmFactoryFor,
  readQdqConv,
  type SharedInstance,
} from "./qdq_ops.ts";
import { instantiateQ, type QExports } from "./kernels/q_wasm.ts";
import { type ChainOp, createSplitChain } from "./kernels/split.ts";
import type { LrnParams } from "./kernels/lrn_reference.ts";
import type { ConvDims } from "./kernels/qconv_reference.ts";
import {
  flattenFactory,
  maxPoolFactory,
  readMaxPool,
  reluFactory,
  softmaxFactory,
} from "./float_ops.ts";

/** An LRN node's attributes with the ONNX defaults (alpha 1e-4, beta 0.75, bias 1). */
function readLrn(node: onnxProto.onnx.INodeProto): LrnParams {
  const size = intAttr(node, "size", 0);
  if (!size) throw new TypeError(`Cannot run LRN node ${node.name}: it has no "size"`);
  return {
    size,
    alpha: floatAttr(node, "alpha", 1e-4),
    beta: floatAttr(node, "beta", 0.75),
    bias: floatAttr(node, "bias", 1),
  };
}

/**
 * ONNX LRN on our SIMD WebAssembly kernel, with the ONNX attribute defaults
 * (alpha 1e-4, beta 0.75, bias 1; size is required).
 */
export const lrnFactory: KernelFactory = async ({ node }) => {
  const params = readLrn(node);
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

/** A part as a chain op, or undefined when chains do not take it. */
function chainOp(part: KernelPart, sevenBit?: boolean): ChainOp | undefined {
  if (part.opType === "LRN") return { op: "lrn", params: readLrn(part.node) };
  if (part.opType === "MaxPool") {
    const params = readMaxPool(part.node);
    return params && { op: "pool", params };
  }
  if (part.opType !== "Conv") return undefined;
  const c = readQdqConv(part);
  if (!c) return undefined;
  const { weights, shape, weightScales, bias, group, strides, pads, dilations, activations } = c;
  return {
    op: "conv",
    // `activations`: an int16 (weight-only) conv ignores xScale and xZeroPoint.
    layer: {
      ...{ weights, shape, weightScales, bias, group, strides, pads, dilations, activations },
      sevenBit,
    },
    xScale: c.xScale,
    xZeroPoint: c.xZeroPoint,
    relu: c.relu,
  };
}

/**
 * Runs of int8 Conv, LRN and MaxPool split across threads as one chain each
 * (kernels/split.ts, `createSplitChain`): one hand-off per run of layers, LRN and
 * MaxPool split too.
 */
function chainFactoryFor(
  helpers: KernelHelpers,
  shared: SharedInstance,
  sevenBit?: boolean,
): ChainFactory {
  return async (parts) => {
    const ops: ChainOp[] = [];
    for (const part of parts) {
      const op = chainOp(part, sevenBit);
      if (!op) break;
      ops.push(op);
    }
    // Longest first: AlexNet gives conv1..conv2 (conv2 by groups), LRN2 + pool2, then
    // conv3..pool5 (planChain refuses a cut that would split conv2's groups or compute
    // LRN2 twice).
    for (let taken = ops.length; taken >= 2; taken--) {
      const chain = await createSplitChain(ops.slice(0, taken), helpers, await shared());
      if (!chain) continue;
      return {
        taken,
        kernel: {
          run([x]) {
            if (x.dims.length !== 4) {
              throw new RangeError(`Cannot run the chain at ${parts[0].node.name}: x is not 4-D`);
            }
            const dims = x.dims as unknown as ConvDims;
            return [{ data: chain.run(x.data, dims), dims: chain.outputDims(dims) }];
          },
          release: () => chain.release(),
        },
      };
    }
    return undefined;
  };
}

/** Options of {@linkcode kernelRegistry}. */
export interface KernelRegistryOptions {
  /**
   * Threads for the int8 Conv and Gemm kernels (default 1): with more, each layer's
   * output channels are split across helper Workers (kernels/split.ts), started on
   * the first layer and stopped when the last kernel is released.
   */
  threads?: number;
  /**
   * With threads > 1, run each run of int8 Conv, LRN and MaxPool as one split chain
   * (default true); false splits each Conv alone and runs LRN and MaxPool on the
   * calling thread (the layout before chains, kept for comparison).
   */
  chains?: boolean;
  /** Whether 7-bit int8 Convs take the 7-bit kernel (default true; `sevenBit` of kernels). */
  sevenBit?: boolean;
}

/**
 * The registry for the chosen modes: LRN with `lrn: "custom"`, QDQ Gemm and
 * Conv with `int8: "custom"`. With `int8: "custom"`, MaxPool, Flatten, Relu,
 * Softmax (and LRN, whatever `lrn` says) join as whole-graph-only kernels: a
 * quantized AlexNet then runs as one chain of our kernels, with no onnxruntime
 * session at all (no round trips, and onnxruntime-web's module is never loaded).
 * With more than one thread the registry also gets a `chain`: runs of those int8
 * Conv, LRN and MaxPool nodes split across the threads as one step each.
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
    // layer instead of each kernel keeping its own (kernels/q_wasm.ts).
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
      ["Conv", qdqConvFactoryFor(helpers, shared, options.sevenBit)],
      ["MaxPool", maxPoolFactory],
      ["Flatten", flattenFactory],
      ["Relu", reluFactory],
      ["Softmax", softmaxFactory],
    );
    if (lrn !== "custom") entries.push(["LRN", lrnGlueFactory]);
    if (helpers && options.chains !== false) {
      return Object.assign(new Map(entries), {
        chain: chainFactoryFor(helpers, shared, options.sevenBit),
      });
    }
  }
  return new Map(entries);
}
