/**
 * QOperator int8 AlexNets with the node structure of the ONNX Model Zoo's
 * bvlcalexnet-12-int8 (Intel Neural Compressor, onnxrt_qlinearops, onnxruntime 1.8
 * quantization tools; see src/model/qoperator.ts and docs/int8.md):
 *
 *   data_0 -> QuantizeLinear -> QLinearConv(conv1, ReLU as y_zero_point 0)
 *     -> DequantizeLinear -> LRN -> QuantizeLinear -> MaxPool (uint8)
 *     -> QLinearConv(conv2, group 2) -> DequantizeLinear -> LRN -> QuantizeLinear -> MaxPool
 *     -> QLinearConv(conv3) -> QLinearConv(conv4) -> QLinearConv(conv5) -> MaxPool
 *     -> Reshape([1, -1]) (uint8)
 *     -> QLinearMatMul(fc6, B [K, N]) -> QLinearAdd(bias as uint8, com.microsoft) ... fc8
 *     -> DequantizeLinear -> Softmax
 *
 * Random float weights, quantized the way that tool does (conv weights int8 symmetric
 * per channel, MatMul weights int8 symmetric per tensor, int32 conv bias, the fc bias
 * as a uint8 activation), activation ranges calibrated by onnxruntime-web on the float
 * graph. For tests and benchmarks; never a real model.
 *
 * @module
 */
import * as ort from "onnxruntime-web";
import type onnxProto from "onnx-proto";
import {
  encodeModel,
  floatTensor,
  floatValueInfo,
  int64Tensor,
  node,
} from "../../src/graph/onnx.ts";
import { onnx } from "../../src/graph/onnx.ts";
import { heUniform, mulberry32 } from "../../src/graph/weights.ts";
import { ZOO_PREPROCESSING } from "../../src/model/zoo.ts";

type Tensor = onnxProto.onnx.ITensorProto;
const DT = onnx.TensorProto.DataType;

/** Options of {@linkcode buildQOperatorAlexNet}. */
export interface QOperatorAlexNetOptions {
  seed?: number;
  /** Input height and width (default 224). */
  inputSize?: number;
  /** Conv widths divided by this (default 1: 96-256-384-384-256). */
  convDivisor?: number;
  /** fc6/fc7 width (default 4096) and classes (default 1000). */
  fcWidth?: number;
  classes?: number;
  /** Calibration inputs (default 4). */
  calibration?: number;
  /** fc weights stored as uint8 with zero point 128 instead of int8. */
  uint8Weights?: boolean;
  /** Activations as int8 (zero point int8), which our kernels refuse. */
  int8Activations?: boolean;
  /**
   * Weight bits: 8 (default, -127..127) or 7 (-63..63, onnxruntime's `reduce_range`: what
   * relaxed SIMD's 7-bit operand takes, wasm/README.md). Still stored as int8.
   */
  weightBits?: 7 | 8;
}

/** A built model: the QOperator bytes, its float source, and inputs like the calibration's. */
export interface QOperatorAlexNet {
  bytes: Uint8Array;
  float: Uint8Array;
  dims: [number, number, number, number];
  /** A random image-like input (values in [-128, 128), as the zoo's preprocessing gives). */
  input(seed: number): Float32Array;
}

const lrnAttrs = { size: 5, alpha: { float: 1e-4 }, beta: { float: 0.75 }, bias: { float: 1 } };
const poolAttrs = { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 };

function scalar(name: string, type: number, v: number): Tensor {
  return type === DT.FLOAT
    ? { name, dims: [], dataType: type, floatData: [v] }
    : { name, dims: [], dataType: type, int32Data: [v] };
}

function raw(name: string, type: number, dims: number[], data: ArrayBufferView): Tensor {
  return {
    name,
    dims,
    dataType: type,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

/** uint8 asymmetric parameters covering [min, max] and 0, as the onnxruntime tools compute. */
function asym(min: number, max: number) {
  min = Math.min(min, 0);
  max = Math.max(max, 0);
  const scale = Math.fround((max - min) / 255 || 1);
  return { scale, zp: Math.round(-min / scale) };
}

/** Symmetric int8 of `w` ([rows, inner] when perRow, else one scale), |q| <= qMax. */
function symInt8(w: Float32Array, rows: number, perRow: boolean, qMax = 127) {
  const inner = w.length / rows;
  const scales = new Float32Array(perRow ? rows : 1);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let i = 0; i < inner; i++) m = Math.max(m, Math.abs(w[r * inner + i]));
    const s = perRow ? r : 0;
    scales[s] = Math.max(scales[s], m);
  }
  for (let i = 0; i < scales.length; i++) scales[i] = Math.fround(scales[i] / qMax || 1);
  const q = new Int8Array(w.length);
  const deq = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const s = scales[perRow ? Math.floor(i / inner) : 0];
    q[i] = Math.max(-qMax, Math.min(qMax, Math.round(w[i] / s)));
    deq[i] = q[i] * s;
  }
  return { q, scales, deq };
}

/**
 * Builds a QOperator AlexNet of the zoo's structure (fixed batch 1), calibrated on
 * random inputs by onnxruntime-web.
 *
 * @example
 * ```ts
 * const { bytes } = await buildQOperatorAlexNet({ inputSize: 67, convDivisor: 8 });
 * ```
 */
export async function buildQOperatorAlexNet(
  options: QOperatorAlexNetOptions = {},
): Promise<QOperatorAlexNet> {
  const {
    seed = 1,
    inputSize = 224,
    convDivisor = 1,
    fcWidth = 4096,
    classes = 1000,
    calibration = 4,
  } = options;
  const random = mulberry32(seed);
  const qMax = options.weightBits === 7 ? 63 : 127;
  const convs = [
    { name: "conv1", out: 96, k: 11, s: 4, p: 0, g: 1 },
    { name: "conv2", out: 256, k: 5, s: 1, p: 2, g: 2 },
    { name: "conv3", out: 384, k: 3, s: 1, p: 1, g: 1 },
    { name: "conv4", out: 384, k: 3, s: 1, p: 1, g: 2 },
    { name: "conv5", out: 256, k: 3, s: 1, p: 1, g: 2 },
  ].map((c) => ({ ...c, out: Math.max(2, Math.round(c.out / convDivisor / 2) * 2) }));
  const dims: [number, number, number, number] = [1, 3, inputSize, inputSize];
  const input = (s: number) => {
    const r = mulberry32(s);
    return Float32Array.from({ length: 3 * inputSize * inputSize }, () => 256 * r() - 128);
  };

  // Float weights, quantized once; the float graph uses the dequantized ones.
  let c = 3, h = inputSize;
  const conv = convs.map((l) => {
    const fanIn = (c / l.g) * l.k * l.k;
    // conv1 brings the [-128, 128) pixels to O(1), so that the logits are too.
    const w = heUniform(l.out * fanIn, fanIn, random, l.name === "conv1" ? 1 / 128 : 1);
    const b = Float32Array.from({ length: l.out }, () => 0.2 * random() - 0.05);
    const wq = symInt8(w, l.out, true, qMax);
    const layer = { ...l, dims: [l.out, c / l.g, l.k, l.k], b, ...wq };
    c = l.out;
    h = Math.floor((h + 2 * l.p - l.k) / l.s) + 1;
    if (l.name === "conv1" || l.name === "conv2" || l.name === "conv5") {
      h = Math.ceil((h - 3) / 2) + 1;
    }
    return layer;
  });
  let features = c * h * h;
  const fc = [["fc6", fcWidth], ["fc7", fcWidth], ["fc8", classes]].map(([name, out]) => {
    const n = out as number;
    // W: [K, N], as MatMul reads it after Gemm(transB) became MatMul + Add.
    const w = heUniform(features * n, features, random);
    const b = Float32Array.from({ length: n }, () => 0.2 * random() - 0.05);
    const wq = symInt8(w, 1, false, qMax);
    const layer = { name: name as string, k: features, n, b, ...wq };
    features = n;
    return layer;
  });

  // The float graph with every tensor a QuantizeLinear will need as an output.
  const fNodes: onnxProto.onnx.INodeProto[] = [];
  const fInits: Tensor[] = [int64Tensor("shape", [1, -1])];
  const watch: string[] = [];
  let x = "data_0";
  for (const l of conv) {
    fInits.push(
      floatTensor(`${l.name}_w`, l.dims, l.deq),
      floatTensor(`${l.name}_b`, [l.out], l.b),
    );
    fNodes.push(
      node("Conv", [x, `${l.name}_w`, `${l.name}_b`], [`${l.name}_1`], {
        kernel_shape: [l.k, l.k],
        strides: [l.s, l.s],
        pads: [l.p, l.p, l.p, l.p],
        group: l.g,
      }),
      node("Relu", [`${l.name}_1`], [`${l.name}_2`]),
    );
    watch.push(`${l.name}_2`);
    x = `${l.name}_2`;
    const i = l.name.slice(4);
    if (l.name === "conv1" || l.name === "conv2") {
      fNodes.push(node("LRN", [x], [`norm${i}`], lrnAttrs));
      watch.push(`norm${i}`);
      x = `norm${i}`;
    }
    if (l.name !== "conv3" && l.name !== "conv4") {
      fNodes.push(node("MaxPool", [x], [`pool${i}`], poolAttrs));
      x = `pool${i}`;
    }
  }
  fNodes.push(node("Reshape", [x, "shape"], ["flat"]));
  x = "flat";
  for (const l of fc) {
    const wf = new Float32Array(l.deq);
    fInits.push(floatTensor(`${l.name}_w`, [l.k, l.n], wf), floatTensor(`${l.name}_b`, [l.n], l.b));
    fNodes.push(
      node("MatMul", [x, `${l.name}_w`], [`${l.name}_mm`]),
      node("Add", [`${l.name}_mm`, `${l.name}_b`], [`${l.name}_1`]),
    );
    watch.push(`${l.name}_mm`);
    x = `${l.name}_1`;
    if (l.name !== "fc8") {
      fNodes.push(node("Relu", [x], [`${l.name}_2`]));
      x = `${l.name}_2`;
    }
    watch.push(x);
  }
  fNodes.push(node("Softmax", [x], ["softmaxout_1"], { axis: 1 }));
  const float = encodeModel({
    name: "qoperator_source",
    node: fNodes,
    initializer: fInits,
    input: [floatValueInfo("data_0", dims)],
    output: [floatValueInfo("softmaxout_1", [1, classes]), ...watch.map((n) => ({ name: n }))],
  }, "alexnet-edge tests");

  // Calibration: min / max of each watched tensor (and the input) over the inputs.
  const session = await ort.InferenceSession.create(float, { executionProviders: ["wasm"] });
  const range = new Map<string, [number, number]>();
  const see = (name: string, data: Float32Array) => {
    const [lo, hi] = range.get(name) ?? [Infinity, -Infinity];
    let a = lo, b = hi;
    for (const v of data) (a = Math.min(a, v)), (b = Math.max(b, v));
    range.set(name, [a, b]);
  };
  for (let i = 0; i < calibration; i++) {
    const data = input(1000 + i);
    see("data_0", data);
    const out = await session.run({ data_0: new ort.Tensor("float32", data, dims) }, watch);
    for (const n of watch) see(n, out[n].data as Float32Array);
  }
  await session.release();
  const params = (name: string) => asym(...range.get(name)!);

  // The QOperator graph.
  const actType = options.int8Activations ? DT.INT8 : DT.UINT8;
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const inits: Tensor[] = [int64Tensor("shape", [1, -1])];
  const qp = (name: string, p: { scale: number; zp: number }) => {
    const zp = options.int8Activations ? p.zp - 128 : p.zp;
    inits.push(
      scalar(`${name}_scale`, DT.FLOAT, p.scale),
      scalar(`${name}_zero_point`, actType, zp),
    );
    return [`${name}_scale`, `${name}_zero_point`];
  };
  let q = "data_0_quantized";
  let qIn = qp("data_0", params("data_0"));
  let inScale = params("data_0").scale;
  nodes.push(node("QuantizeLinear", ["data_0", ...qIn], [q], {}, "data_0_QuantizeLinear"));
  for (const l of conv) {
    const y = `${l.name}_2_quantized`;
    const p = params(`${l.name}_2`);
    const qOut = qp(`${l.name}_2`, p);
    const biasQ = Int32Array.from(l.b, (v, m) => Math.round(v / (inScale * l.scales[m])));
    inits.push(
      raw(`${l.name}_w_quantized`, DT.INT8, l.dims, l.q),
      raw(`${l.name}_w_scale`, DT.FLOAT, [l.out], l.scales),
      raw(`${l.name}_w_zero_point`, DT.INT8, [l.out], new Int8Array(l.out)),
      raw(`${l.name}_b_quantized`, DT.INT32, [l.out], biasQ),
    );
    nodes.push(node(
      "QLinearConv",
      [
        q,
        ...qIn,
        `${l.name}_w_quantized`,
        `${l.name}_w_scale`,
        `${l.name}_w_zero_point`,
        ...qOut,
        `${l.name}_b_quantized`,
      ],
      [y],
      {
        kernel_shape: [l.k, l.k],
        strides: [l.s, l.s],
        pads: [l.p, l.p, l.p, l.p],
        group: l.g,
      },
      `${l.name}_1_quant`,
    ));
    q = y;
    qIn = qOut;
    inScale = p.scale;
    const i = l.name.slice(4);
    if (l.name === "conv1" || l.name === "conv2") {
      const pn = params(`norm${i}`);
      const qn = qp(`norm${i}`, pn);
      nodes.push(
        node("DequantizeLinear", [q, ...qIn], [`${l.name}_2`], {}, `${l.name}_2_DequantizeLinear`),
        node("LRN", [`${l.name}_2`], [`norm${i}`], lrnAttrs, `norm${i}`),
        node("QuantizeLinear", [`norm${i}`, ...qn], [`norm${i}_quantized`], {}, `norm${i}_Q`),
      );
      q = `norm${i}_quantized`;
      qIn = qn;
      inScale = pn.scale;
    }
    if (l.name !== "conv3" && l.name !== "conv4") {
      nodes.push(node("MaxPool", [q], [`pool${i}_quantized`], poolAttrs, `pool${i}`));
      q = `pool${i}_quantized`;
    }
  }
  nodes.push(node("Reshape", [q, "shape"], ["flat_quantized"], {}, "OC2_DUMMY_0"));
  q = "flat_quantized";
  for (const l of fc) {
    const pm = params(`${l.name}_mm`);
    const qm = qp(`${l.name}_mm`, pm);
    const out = l.name === "fc8" ? `${l.name}_1` : `${l.name}_2`;
    const qo = qp(out, params(out));
    const pb = asym(Math.min(...l.b), Math.max(...l.b));
    const qb = qp(`${l.name}_b`, pb);
    const wType = options.uint8Weights ? DT.UINT8 : DT.INT8;
    const w = options.uint8Weights ? Uint8Array.from(l.q, (v) => v + 128) : l.q;
    inits.push(
      raw(`${l.name}_w_quantized`, wType, [l.k, l.n], w),
      scalar(`${l.name}_w_scale`, DT.FLOAT, l.scales[0]),
      scalar(`${l.name}_w_zero_point`, wType, options.uint8Weights ? 128 : 0),
      raw(
        `${l.name}_b_quantized`,
        actType,
        [l.n],
        Uint8Array.from(l.b, (v) => Math.max(0, Math.min(255, Math.round(v / pb.scale) + pb.zp))),
      ),
    );
    nodes.push(
      node(
        "QLinearMatMul",
        [
          q,
          ...qIn,
          `${l.name}_w_quantized`,
          `${l.name}_w_scale`,
          `${l.name}_w_zero_point`,
          ...qm,
        ],
        [`${l.name}_mm_quantized`],
        {},
        `${l.name}_1_MatMul_quant`,
      ),
      {
        ...node(
          "QLinearAdd",
          [
            `${l.name}_mm_quantized`,
            ...qm,
            `${l.name}_b_quantized`,
            ...qb,
            ...qo,
          ],
          [`${out}_quantized`],
          {},
          `${l.name}_1_Add_quant`,
        ),
        domain: "com.microsoft",
      },
    );
    q = `${out}_quantized`;
    qIn = qo;
  }
  nodes.push(
    node("DequantizeLinear", [q, ...qIn], ["fc8_1"], {}, "fc8_1_DequantizeLinear"),
    node("Softmax", ["fc8_1"], ["softmaxout_1"], { axis: 1 }, "prob_1"),
  );
  const bytes = onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 7,
    producerName: "alexnet-edge tests (zoo bvlcalexnet-12-int8 structure)",
    opsetImport: [{ domain: "", version: 12 }, { domain: "com.microsoft", version: 1 }],
    graph: {
      name: "qoperator_alexnet",
      node: nodes,
      initializer: inits,
      input: [floatValueInfo("data_0", dims)],
      output: [floatValueInfo("softmaxout_1", [1, classes])],
    },
  })).finish();
  return { bytes, float, dims, input };
}

/**
 * A small QOperator AlexNet (67 x 67 input, the zoo's preprocessing at that size) written to a
 * fresh temp folder with its manifest and labels, ready for `--model`: served on our int8
 * kernels.
 */
export async function writeQOperatorModel(
  options: { name: string; classes: number; prefix: string },
): Promise<{ dir: string; model: string }> {
  const { name, classes, prefix } = options;
  const m = await buildQOperatorAlexNet({ inputSize: 67, convDivisor: 8, fcWidth: 256, classes });
  const dir = await Deno.makeTempDir({ prefix });
  await Deno.writeFile(`${dir}/qop.onnx`, m.bytes);
  const labels = Array.from({ length: classes }, (_, i) => `class ${i}`);
  await Deno.writeTextFile(`${dir}/labels.txt`, labels.join("\n") + "\n");
  await Deno.writeTextFile(
    `${dir}/qop.json`,
    JSON.stringify({
      name,
      model: "qop.onnx",
      input: { name: "data_0" },
      output: { name: "softmaxout_1", kind: "probabilities" },
      preprocessing: { ...ZOO_PREPROCESSING, width: 67, height: 67 },
      labels: "labels.txt",
      precision: "int8",
      provenance: { kind: "user", source: "tests/model/_qoperator_models.ts" },
    }),
  );
  return { dir, model: `${dir}/qop.onnx` };
}
