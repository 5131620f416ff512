/**
 * The paper's AlexNet (Krizhevsky et al., 2012) as an ONNX graph, with the
 * interface of the ONNX Model Zoo's bvlcalexnet-12: input `data_0`
 * [N, 3, 224, 224], output `softmaxout_1` [N, 1000]. Caffe pools round up
 * (ceil mode), which is why 224 input still ends at 6x6x256.
 *
 * @module
 */
import type onnxProto from "onnx-proto";
import {
  encodeModel,
  floatTensor,
  floatValueInfo,
  heUniform,
  mulberry32,
  node,
} from "../graph/mod.ts";

import { ALEXNET_INPUT, ALEXNET_OUTPUT, ALEXNET_PARAMETERS } from "./alexnet_io.ts";

export { ALEXNET_INPUT, ALEXNET_OUTPUT, ALEXNET_PARAMETERS };

/** One layer of the network, in order; shapes follow from these. */
export type LayerSpec =
  | {
    kind: "conv";
    name: string;
    out: number;
    kernel: number;
    stride: number;
    pad: number;
    groups: number;
  }
  | { kind: "lrn"; name: string; size: number; alpha: number; beta: number; bias: number }
  | { kind: "pool"; name: string; kernel: number; stride: number }
  | { kind: "fc"; name: string; out: number; relu: boolean }
  | { kind: "softmax"; name: string };

const LRN = { size: 5, alpha: 1e-4, beta: 0.75, bias: 1 } as const;

/** AlexNet layer by layer (ReLU follows every conv and fc6/fc7; dropout is training-only). */
export const ALEXNET_LAYERS: readonly LayerSpec[] = [
  { kind: "conv", name: "conv1", out: 96, kernel: 11, stride: 4, pad: 0, groups: 1 },
  { kind: "lrn", name: "norm1", ...LRN },
  { kind: "pool", name: "pool1", kernel: 3, stride: 2 },
  { kind: "conv", name: "conv2", out: 256, kernel: 5, stride: 1, pad: 2, groups: 2 },
  { kind: "lrn", name: "norm2", ...LRN },
  { kind: "pool", name: "pool2", kernel: 3, stride: 2 },
  { kind: "conv", name: "conv3", out: 384, kernel: 3, stride: 1, pad: 1, groups: 1 },
  { kind: "conv", name: "conv4", out: 384, kernel: 3, stride: 1, pad: 1, groups: 2 },
  { kind: "conv", name: "conv5", out: 256, kernel: 3, stride: 1, pad: 1, groups: 2 },
  { kind: "pool", name: "pool5", kernel: 3, stride: 2 },
  { kind: "fc", name: "fc6", out: 4096, relu: true },
  { kind: "fc", name: "fc7", out: 4096, relu: true },
  { kind: "fc", name: "fc8", out: 1000, relu: false },
  { kind: "softmax", name: "prob" },
];

/** A layer's output shape (without batch) and learned parameter count. */
export interface LayerShape {
  name: string;
  kind: LayerSpec["kind"];
  /** [C, H, W] for conv/lrn/pool, [features] for fc/softmax. */
  shape: number[];
  parameters: number;
  /** Multiply-adds per image. */
  macs: number;
  /** Name of the graph tensor holding this layer's output (after its ReLU, if any). */
  tensor: string;
}

/** Output size of a conv (floor) or a Caffe pool (ceil) along one axis. */
function outSize(size: number, kernel: number, stride: number, pad: number, ceil: boolean) {
  const span = size + 2 * pad - kernel;
  return (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
}

/**
 * Walks the layer table and returns every layer's output shape, parameter count
 * and multiply-adds, for an input of `channels` x `size` x `size`.
 *
 * @example
 * ```ts
 * const shapes = alexnetShapes();
 * shapes.at(-1)!.shape; // [1000]
 * ```
 */
export function alexnetShapes(size = 224, layers: readonly LayerSpec[] = ALEXNET_LAYERS) {
  const out: LayerShape[] = [];
  let c = 3, h = size, w = size, features = 0;
  for (const layer of layers) {
    const tensor = outputTensorName(layer);
    switch (layer.kind) {
      case "conv": {
        const inPerGroup = c / layer.groups;
        h = outSize(h, layer.kernel, layer.stride, layer.pad, false);
        w = outSize(w, layer.kernel, layer.stride, layer.pad, false);
        const weights = layer.out * inPerGroup * layer.kernel * layer.kernel;
        c = layer.out;
        out.push({
          name: layer.name,
          kind: layer.kind,
          shape: [c, h, w],
          parameters: weights + layer.out,
          macs: weights * h * w,
          tensor,
        });
        break;
      }
      case "lrn":
        out.push({
          name: layer.name,
          kind: layer.kind,
          shape: [c, h, w],
          parameters: 0,
          macs: 0,
          tensor,
        });
        break;
      case "pool":
        h = outSize(h, layer.kernel, layer.stride, 0, true);
        w = outSize(w, layer.kernel, layer.stride, 0, true);
        out.push({
          name: layer.name,
          kind: layer.kind,
          shape: [c, h, w],
          parameters: 0,
          macs: 0,
          tensor,
        });
        break;
      case "fc": {
        const inFeatures = features || c * h * w;
        features = layer.out;
        out.push({
          name: layer.name,
          kind: layer.kind,
          shape: [features],
          parameters: inFeatures * features + features,
          macs: inFeatures * features,
          tensor,
        });
        break;
      }
      case "softmax":
        out.push({
          name: layer.name,
          kind: layer.kind,
          shape: [features],
          parameters: 0,
          macs: 0,
          tensor,
        });
    }
  }
  return out;
}

/** The graph tensor a layer writes (zoo-style names: conv1_2 is conv1 after its ReLU). */
function outputTensorName(layer: LayerSpec): string {
  switch (layer.kind) {
    case "conv":
      return `${layer.name}_2`;
    case "fc":
      return layer.relu ? `${layer.name}_2` : `${layer.name}_1`;
    case "softmax":
      return ALEXNET_OUTPUT;
    default:
      return `${layer.name}_1`;
  }
}

/** Options for {@linkcode buildAlexNet}. */
export interface BuildOptions {
  /** PRNG seed of the synthetic weights (default 1). */
  seed?: number;
  /** Square input size (default 224; 227 as in Caffe also works). */
  inputSize?: number;
  /** Also expose every layer's output as a graph output (for inspection and tests). */
  intermediateOutputs?: boolean;
}

/**
 * Builds AlexNet with seeded synthetic weights and returns the ONNX bytes.
 * Weights are He-uniform (biases zero), so activations neither vanish nor
 * explode; they carry no knowledge, and predictions from them mean nothing.
 *
 * @example
 * ```ts
 * const bytes = buildAlexNet({ seed: 1 });
 * await Deno.writeFile("models/alexnet-synthetic.onnx", bytes);
 * ```
 */
export function buildAlexNet(options: BuildOptions = {}): Uint8Array {
  const { seed = 1, inputSize = 224, intermediateOutputs = false } = options;
  const random = mulberry32(seed);
  const shapes = alexnetShapes(inputSize);
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const initializers: onnxProto.onnx.ITensorProto[] = [];
  let x = ALEXNET_INPUT;
  let channels = 3;
  let flat = 0;

  ALEXNET_LAYERS.forEach((layer, i) => {
    const shape = shapes[i];
    switch (layer.kind) {
      case "conv": {
        // w: [out, in / groups, k, k], b: [out]
        const inPerGroup = channels / layer.groups;
        const fanIn = inPerGroup * layer.kernel * layer.kernel;
        const dims = [layer.out, inPerGroup, layer.kernel, layer.kernel];
        const w = heUniform(layer.out * fanIn, fanIn, random);
        initializers.push(floatTensor(`${layer.name}_w_0`, dims, w));
        initializers.push(
          floatTensor(`${layer.name}_b_0`, [layer.out], new Float32Array(layer.out)),
        );
        const p = layer.pad;
        nodes.push(
          node("Conv", [x, `${layer.name}_w_0`, `${layer.name}_b_0`], [`${layer.name}_1`], {
            kernel_shape: [layer.kernel, layer.kernel],
            strides: [layer.stride, layer.stride],
            pads: [p, p, p, p],
            group: layer.groups,
          }),
          node("Relu", [`${layer.name}_1`], [shape.tensor]),
        );
        channels = layer.out;
        break;
      }
      case "lrn":
        nodes.push(node("LRN", [x], [shape.tensor], {
          size: layer.size,
          alpha: { float: layer.alpha },
          beta: { float: layer.beta },
          bias: { float: layer.bias },
        }));
        break;
      case "pool":
        nodes.push(node("MaxPool", [x], [shape.tensor], {
          kernel_shape: [layer.kernel, layer.kernel],
          strides: [layer.stride, layer.stride],
          ceil_mode: 1,
        }));
        break;
      case "fc": {
        // Gemm with transB: w: [out, in] as Caffe stores it, b: [out]
        if (flat === 0) {
          flat = shapes[i - 1].shape.reduce((a, b) => a * b, 1);
          nodes.push(node("Flatten", [x], [`${layer.name}_flat`], { axis: 1 }));
          x = `${layer.name}_flat`;
        }
        const w = heUniform(layer.out * flat, flat, random);
        initializers.push(floatTensor(`${layer.name}_w_0`, [layer.out, flat], w));
        initializers.push(
          floatTensor(`${layer.name}_b_0`, [layer.out], new Float32Array(layer.out)),
        );
        nodes.push(
          node("Gemm", [x, `${layer.name}_w_0`, `${layer.name}_b_0`], [`${layer.name}_1`], {
            transB: 1,
          }),
        );
        if (layer.relu) nodes.push(node("Relu", [`${layer.name}_1`], [shape.tensor]));
        flat = layer.out;
        break;
      }
      case "softmax":
        nodes.push(node("Softmax", [x], [shape.tensor], { axis: 1 }));
        break;
    }
    x = shape.tensor;
  });

  const outputs = [floatValueInfo(ALEXNET_OUTPUT, ["N", shapes.at(-1)!.shape[0]])];
  if (intermediateOutputs) {
    for (const s of shapes.slice(0, -1)) outputs.push(floatValueInfo(s.tensor, ["N", ...s.shape]));
  }
  return encodeModel({
    name: "alexnet",
    node: nodes,
    initializer: initializers,
    input: [floatValueInfo(ALEXNET_INPUT, ["N", 3, inputSize, inputSize])],
    output: outputs,
  }, "alexnet-edge");
}
