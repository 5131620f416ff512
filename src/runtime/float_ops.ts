/**
 * The float nodes between quantized layers (MaxPool, Flatten, Relu, Softmax) as
 * kernels, so that a quantized classifier can run as one chain of our kernels. They
 * are whole-graph-only (custom_ops.ts): in any graph that still needs onnxruntime
 * they stay in its parts.
 *
 * @module
 */
import type onnxProto from "onnx-proto";
import { intAttr, intsAttr, type KernelPart, stringAttr } from "../graph/mod.ts";
import type { KernelFactory } from "./kernel_types.ts";
import { createMaxPoolKernel } from "./kernels/maxpool_wasm.ts";
import type { ConvDims } from "./kernels/qconv_reference.ts";
import { softmaxLastAxis } from "./kernels/softmax.ts";

type NodeProto = onnxProto.onnx.INodeProto;

/** Whether the node writes only its first output (no optional extra outputs in use). */
function singleOutput(n: NodeProto): boolean {
  return (n.output ?? []).slice(1).every((o) => o === "");
}

/** A 2-D MaxPool's attributes, or undefined when our kernel does not take it. */
export function readMaxPool(node: NodeProto) {
  if (node.opType !== "MaxPool" || !singleOutput(node)) return undefined;
  const autoPad = stringAttr(node, "auto_pad");
  if (autoPad !== undefined && autoPad !== "NOTSET") return undefined;
  const kernelShape = intsAttr(node, "kernel_shape");
  if (kernelShape?.length !== 2) return undefined;
  const strides = intsAttr(node, "strides") ?? [1, 1];
  const pads = intsAttr(node, "pads") ?? [0, 0, 0, 0];
  const dilations = intsAttr(node, "dilations") ?? [1, 1];
  if (strides.length !== 2 || pads.length !== 4 || dilations.length !== 2) return undefined;
  return {
    kernelShape: kernelShape as [number, number],
    strides: strides as [number, number],
    pads: pads as [number, number, number, number],
    dilations: dilations as [number, number],
    ceilMode: intAttr(node, "ceil_mode", 0) === 1,
  };
}

/** MaxPool on our WebAssembly kernel: x: [N, C, H, W] -> y: [N, C, OH, OW]. */
export const maxPoolFactory: KernelFactory = async ({ node }: KernelPart) => {
  const params = readMaxPool(node);
  if (!params) throw new TypeError(`Cannot run ${node.name} as MaxPool: unsupported attributes`);
  const kernel = await createMaxPoolKernel(params);
  let out = new Float32Array(0);
  return {
    run([x]) {
      if (x.dims.length !== 4) {
        throw new RangeError(`Cannot run MaxPool node ${node.name}: input is not 4-D`);
      }
      const dims = x.dims as unknown as ConvDims;
      const outDims = kernel.outputDims(dims);
      const size = outDims.reduce((a, b) => a * b, 1);
      if (out.length !== size) out = new Float32Array(size);
      kernel.run(x.data, dims, out);
      return [{ data: out, dims: outDims }];
    },
  };
};
maxPoolFactory.accepts = ({ node }) => readMaxPool(node) !== undefined;
maxPoolFactory.wholeGraphOnly = true;

/** Flatten: the same values as [prod(dims[:axis]), prod(dims[axis:])], no copy. */
export const flattenFactory: KernelFactory = ({ node }: KernelPart) => {
  const axisAttr = intAttr(node, "axis", 1);
  return Promise.resolve({
    run([x]) {
      const rank = x.dims.length;
      const axis = axisAttr < 0 ? axisAttr + rank : axisAttr;
      if (axis < 0 || axis > rank) {
        throw new RangeError(
          `Cannot run Flatten node ${node.name}: axis ${axisAttr} of rank ${rank}`,
        );
      }
      const outer = x.dims.slice(0, axis).reduce((a, b) => a * b, 1);
      return [{ data: x.data, dims: [outer, outer === 0 ? 0 : x.data.length / outer] }];
    },
  });
};
flattenFactory.wholeGraphOnly = true;

/** Relu: y = max(x, 0). */
export const reluFactory: KernelFactory = () => {
  let out = new Float32Array(0);
  return Promise.resolve({
    run([x]) {
      if (out.length !== x.data.length) out = new Float32Array(x.data.length);
      for (let i = 0; i < out.length; i++) out[i] = x.data[i] < 0 ? 0 : x.data[i];
      return [{ data: out, dims: x.dims }];
    },
  });
};
reluFactory.wholeGraphOnly = true;

/**
 * Softmax along the last axis, where every opset agrees (before opset 13 Softmax
 * flattens from `axis` on, since 13 it works on `axis` alone). Nodes with an axis
 * other than -1 or 1 stay in onnxruntime; axis 1 of a tensor of rank > 2 is refused
 * at run time.
 */
export const softmaxFactory: KernelFactory = ({ node }: KernelPart) => {
  const axis = intAttr(node, "axis", -1);
  let out = new Float32Array(0);
  return Promise.resolve({
    run([x]) {
      const rank = x.dims.length;
      if (rank === 0 || (axis !== -1 && axis !== rank - 1)) {
        throw new RangeError(
          `Cannot run Softmax node ${node.name}: axis ${axis} is not the last of rank ${rank}`,
        );
      }
      if (out.length !== x.data.length) out = new Float32Array(x.data.length);
      softmaxLastAxis(x.data, x.dims[rank - 1], out);
      return [{ data: out, dims: x.dims }];
    },
  });
};
softmaxFactory.accepts = ({ node }) => {
  const axis = intAttr(node, "axis", -1);
  return axis === -1 || axis === 1;
};
softmaxFactory.wholeGraphOnly = true;
