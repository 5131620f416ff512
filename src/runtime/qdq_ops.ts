/**
 * Quantized layers on our int8 WebAssembly kernels: a QDQ Gemm (or Conv)
 *
 *   x -> QuantizeLinear -> DequantizeLinear -> Gemm(transB) [-> Relu]
 *   W_int8 -> DequantizeLinear (per row) ----/
 *   b_int32 -> DequantizeLinear ------------/
 *
 * runs as one step: quantize x, exact int8 x int8 -> int32 sums, scale, bias,
 * ReLU. The partitioner hands the kernel the absorbed Q/DQ nodes and their
 * initializers (src/graph/partition.ts, `fuseQdq`).
 *
 * A weight-only Gemm or Conv (int8 weights, float input: no QuantizeLinear on x)
 *
 *   x (float) --------------------------------------> Gemm(transB) / Conv [-> Relu]
 *   W_int8 -> DequantizeLinear (per row) ----------/
 *
 * runs on the same packed weights with the input rounded per call on its own range
 * (`activations: "int16"`): the Gemm per sample to int16 (kernels/qlinear_reference.ts),
 * the Conv per image and group to a grid of up to int16 that keeps int32 sums exact
 * (kernels/qconv_reference.ts, `qconv16Reference`). That is an input error of at most
 * max |x| / 65534 (Gemm) to max |x| / 14562 (AlexNet's conv3) per value, where the
 * float layer the file describes has none.
 *
 * @module
 */
import type onnxProto from "onnx-proto";
import {
  floatAttr,
  int8View,
  intAttr,
  intsAttr,
  type KernelPart,
  onnx,
  stringAttr,
  tensorValues,
} from "../graph/mod.ts";
import type { KernelFactory } from "./kernel_types.ts";
import { createQConvKernel } from "./kernels/qconv_wasm.ts";
import { createQLinearKernel } from "./kernels/qlinear_wasm.ts";
import { createSplitConvKernel, createSplitLinearKernel, KernelHelpers } from "./kernels/split.ts";
import type { QExports } from "./kernels/q_wasm.ts";

/** Gives the instance the kernels of one model share (made on first use). */
export type SharedInstance = () => Promise<QExports>;

type NodeProto = onnxProto.onnx.INodeProto;
const DT = onnx.TensorProto.DataType;

/**
 * The parts every QDQ layer shares, read from the part: the activation's
 * QuantizeLinear parameters (none for a weight-only layer), the int8 per-channel
 * weights, the bias, ReLU. Undefined when the part is not that pattern.
 */
function readQdqLayer(
  part: Pick<KernelPart, "node" | "absorbed" | "initializers">,
  weightRank: number,
) {
  const { node, absorbed, initializers } = part;
  const byOutput = new Map(absorbed.flatMap((n) => (n.output ?? []).map((o) => [o, n] as const)));
  const init = (name?: string | null) => (name ? initializers.get(name) : undefined);
  const [a, b, c] = node.input!;
  const dqA = byOutput.get(a), dqB = byOutput.get(b), dqC = c ? byOutput.get(c) : undefined;
  const q = dqA ? byOutput.get(dqA.input![0]) : undefined;
  // No absorbed DequantizeLinear on x: a weight-only layer, x is float.
  const weightOnly = !dqA;
  if (!weightOnly && (!q || q.opType !== "QuantizeLinear")) return undefined;
  if (!dqB) return undefined;
  const [xScaleT, xZeroT] = q ? [init(q.input![1]), init(q.input![2])] : [];
  const [wT, wScaleT] = [init(dqB.input![0]), init(dqB.input![1])];
  if (!wT || !wScaleT || wT.dataType !== DT.INT8 || wT.dims?.length !== weightRank) {
    return undefined;
  }
  if (!weightOnly && !xScaleT) return undefined;
  if (xZeroT && xZeroT.dataType !== DT.UINT8) return undefined;
  if (intAttr(dqB, "axis", 1) !== 0 && tensorValues(wScaleT).length !== 1) {
    return undefined;
  }
  const wZero = init(dqB.input![2]);
  if (wZero && tensorValues(wZero).some((v) => v !== 0)) return undefined;
  const dims = wT.dims.map(Number);
  const m = dims[0];
  const wScales = tensorValues(wScaleT) as Float32Array;
  if (wScales.length !== m && wScales.length !== 1) return undefined;
  let bias: Float32Array | undefined;
  if (c) {
    if (dqC) {
      const [bq, bs] = [init(dqC.input![0]), init(dqC.input![1])];
      if (!bq || !bs) return undefined;
      const q32 = tensorValues(bq), s = tensorValues(bs) as Float32Array;
      // DequantizeLinear in float32: b = f32(b_q * s).
      bias = Float32Array.from(q32, (v, i) => Math.fround(v * s[s.length === 1 ? 0 : i]));
    } else if (init(c)?.dataType === DT.FLOAT) bias = tensorValues(init(c)!) as Float32Array;
    else return undefined;
  }
  return {
    x: q ? q.input![0] : a,
    // A weight-only layer's kernel picks its input scale per sample (these go unused).
    xScale: xScaleT ? (tensorValues(xScaleT) as Float32Array)[0] : 1,
    xZeroPoint: xZeroT ? (tensorValues(xZeroT) as Uint8Array)[0] : 0,
    activations: weightOnly ? "int16" as const : "uint8" as const,
    weights: int8View(wT),
    dims,
    weightScales: wScales.length === m ? wScales : new Float32Array(m).fill(wScales[0]),
    bias,
    relu: absorbed.some((n) => n.opType === "Relu"),
  };
}

/**
 * A QDQ or weight-only Gemm (transB, alpha = beta = 1) as our int8 linear kernel
 * takes it (`activations`: `uint8` for QDQ, `int16` for weight-only).
 */
export function readQdqGemm(part: Pick<KernelPart, "node" | "absorbed" | "initializers">) {
  const { node } = part;
  if (node.opType !== "Gemm") return undefined;
  if (intAttr(node, "transB", 0) !== 1 || intAttr(node, "transA", 0) !== 0) {
    return undefined;
  }
  if (floatAttr(node, "alpha", 1) !== 1 || floatAttr(node, "beta", 1) !== 1) return undefined;
  const layer = readQdqLayer(part, 2);
  return layer && { ...layer, m: layer.dims[0], k: layer.dims[1] };
}

/** A QDQ or weight-only Conv (2-D, explicit pads) as our int8 conv kernel takes it. */
export function readQdqConv(part: Pick<KernelPart, "node" | "absorbed" | "initializers">) {
  const { node } = part;
  if (node.opType !== "Conv") return undefined;
  const autoPad = stringAttr(node, "auto_pad");
  if (autoPad !== undefined && autoPad !== "NOTSET") return undefined;
  const layer = readQdqLayer(part, 4);
  if (!layer) return undefined;
  const ints = (name: string, fallback: number[]) => intsAttr(node, name) ?? fallback;
  const [pt, pl, pb, pr] = ints("pads", [0, 0, 0, 0]);
  return {
    ...layer,
    shape: layer.dims as unknown as [number, number, number, number],
    group: intAttr(node, "group", 1),
    strides: ints("strides", [1, 1]) as [number, number],
    pads: [pt, pl, pb, pr] as [number, number, number, number],
    dilations: ints("dilations", [1, 1]) as [number, number],
  };
}

/**
 * The QDQ Gemm on our int8 kernel: x: [N, K] -> y: [N, M]; split over `helpers`'
 * threads, in the `shared` instance when given.
 */
export function qdqGemmFactoryFor(helpers?: KernelHelpers, shared?: SharedInstance): KernelFactory {
  const factory: KernelFactory = async (part: KernelPart) => {
    const g = readQdqGemm(part);
    if (!g) throw new TypeError(`Cannot run ${part.node.name} as an int8 Gemm: not a QDQ Gemm`);
    const instance = await shared?.();
    const kernel = (helpers && await createSplitLinearKernel(g, helpers, instance)) ??
      await createQLinearKernel({ ...g, instance });
    // Keep scalars only: the weights now live in the kernels' memories.
    const { k, m, xScale, xZeroPoint, relu } = g;
    let out = new Float32Array(0);
    return {
      run([x]) {
        const n = x.data.length / k;
        if (out.length !== n * m) out = new Float32Array(n * m);
        kernel.run(x.data, n, xScale, xZeroPoint, relu, out);
        return [{ data: out, dims: [n, m] }];
      },
      release: () => kernel.release(),
    };
  };
  factory.fusesQdq = true;
  factory.accepts = (part) => readQdqGemm(part) !== undefined;
  return factory;
}

/** The QDQ Conv on our int8 kernel: x: [N, C, H, W] -> y: [N, M, OH, OW]; as above. */
export function qdqConvFactoryFor(
  helpers?: KernelHelpers,
  shared?: SharedInstance,
  sevenBit?: boolean,
): KernelFactory {
  const factory: KernelFactory = async (part: KernelPart) => {
    const read = readQdqConv(part);
    if (!read) throw new TypeError(`Cannot run ${part.node.name} as an int8 Conv: not a QDQ Conv`);
    const g = { ...read, sevenBit };
    const instance = await shared?.();
    const kernel = (helpers && await createSplitConvKernel(g, helpers, instance)) ??
      await createQConvKernel({ ...g, instance });
    const { xScale, xZeroPoint, relu } = g;
    let out = new Float32Array(0);
    return {
      run([x]) {
        const dims = x.dims as [number, number, number, number];
        const outDims = kernel.outputDims(dims);
        const size = outDims.reduce((a, b) => a * b, 1);
        if (out.length !== size) out = new Float32Array(size);
        kernel.run(x.data, dims, xScale, xZeroPoint, relu, out);
        return [{ data: out, dims: outDims }];
      },
      release: () => kernel.release(),
    };
  };
  factory.fusesQdq = true;
  factory.accepts = (part) => readQdqConv(part) !== undefined;
  return factory;
}

/** The QDQ Gemm on one thread. */
export const qdqGemmFactory: KernelFactory = qdqGemmFactoryFor();

/** The QDQ Conv on one thread. */
export const qdqConvFactory: KernelFactory = qdqConvFactoryFor();

export { KernelHelpers };
