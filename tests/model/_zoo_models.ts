/**
 * Small models with the zoo AlexNet's exact interface (input data_0 float
 * [1,3,224,224], output softmaxout_1 [1,1000], already softmax), in the three
 * encodings the zoo ships: float32, int8 QOperator (QuantizeLinear ->
 * QLinearConv -> DequantizeLinear) and int8 QDQ (QuantizeLinear/
 * DequantizeLinear pairs around a float Conv). The real files (61-244 MB)
 * cannot be fetched from the test machines.
 *
 * x: [1, 3, 224, 224] -> conv1 8@11x11/4 [1, 8, 54, 54] -> ReLU -> LRN(5) ->
 * MaxPool 3/2 [1, 8, 26, 26] -> GlobalAveragePool -> Flatten [1, 8] ->
 * Gemm 1000 -> Softmax -> y: [1, 1000]
 */
import type onnxProto from "onnx-proto";
import { encodeModel, floatTensor, floatValueInfo, node, onnx } from "../../src/graph/onnx.ts";
import { findZooEntry, type ZooEntry, zooManifest } from "../../src/model/zoo.ts";
import { heUniform, mulberry32 } from "../../src/graph/weights.ts";
import { pinOf } from "./_fetch_servers.ts";

/** The zoo's three encodings. */
export type ZooEncoding = "fp32" | "qoperator" | "qdq";

const DT = onnx.TensorProto.DataType;

/** A scalar or tensor initializer of any element type, from raw little-endian bytes. */
function rawTensor(
  name: string,
  dataType: number,
  dims: number[],
  raw: ArrayBufferView,
): onnxProto.onnx.ITensorProto {
  return {
    name,
    dims,
    dataType,
    rawData: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength),
  };
}

const f32 = (name: string, v: number) => rawTensor(name, DT.FLOAT, [], new Float32Array([v]));
const u8 = (name: string, v: number) => rawTensor(name, DT.UINT8, [], new Uint8Array([v]));
const i8 = (name: string, v: number) => rawTensor(name, DT.INT8, [], new Int8Array([v]));

/** Builds the model; the same seeded weights in every encoding. */
export function buildZooInterfaceModel(encoding: ZooEncoding): Uint8Array {
  const random = mulberry32(2012);
  const w1 = heUniform(8 * 3 * 11 * 11, 3 * 11 * 11, random);
  const w2 = heUniform(1000 * 8, 8, random);
  const wScale = 0.13 / 127;
  const w1q = Int8Array.from(w1, (w) => Math.max(-127, Math.min(127, Math.round(w / wScale))));
  const xScale = 1; // zoo inputs span about -124..152 (raw pixels minus the mean)
  const yScale = 2;

  const head = [
    node("Relu", ["c1"], ["r1"]),
    node("LRN", ["r1"], ["n1"], { size: 5, alpha: { float: 1e-4 }, beta: { float: 0.75 } }),
    node("MaxPool", ["n1"], ["p1"], { kernel_shape: [3, 3], strides: [2, 2] }),
    node("GlobalAveragePool", ["p1"], ["g1"]),
    node("Flatten", ["g1"], ["f1"], { axis: 1 }),
    node("Gemm", ["f1", "w2", "b2"], ["fc"], { transB: 1 }),
    node("Softmax", ["fc"], ["softmaxout_1"], { axis: 1 }),
  ];
  const headInit = [
    floatTensor("w2", [1000, 8], w2),
    floatTensor("b2", [1000], new Float32Array(1000)),
  ];
  let body: onnxProto.onnx.INodeProto[];
  let init: onnxProto.onnx.ITensorProto[];
  if (encoding === "fp32") {
    body = [
      node("Conv", ["data_0", "w1", "b1"], ["c1"], { kernel_shape: [11, 11], strides: [4, 4] }),
    ];
    init = [floatTensor("w1", [8, 3, 11, 11], w1), floatTensor("b1", [8], new Float32Array(8))];
  } else if (encoding === "qoperator") {
    body = [
      node("QuantizeLinear", ["data_0", "x_scale", "x_zp"], ["x_q"]),
      node(
        "QLinearConv",
        ["x_q", "x_scale", "x_zp", "w1_q", "w1_scale", "w1_zp", "y_scale", "y_zp", "b1_q"],
        ["c1_q"],
        { kernel_shape: [11, 11], strides: [4, 4] },
      ),
      node("DequantizeLinear", ["c1_q", "y_scale", "y_zp"], ["c1"]),
    ];
    init = [
      f32("x_scale", xScale),
      u8("x_zp", 128),
      rawTensor("w1_q", DT.INT8, [8, 3, 11, 11], w1q),
      f32("w1_scale", wScale),
      i8("w1_zp", 0),
      f32("y_scale", yScale),
      u8("y_zp", 128),
      rawTensor("b1_q", DT.INT32, [8], new Int32Array(8)),
    ];
  } else {
    body = [
      node("QuantizeLinear", ["data_0", "x_scale", "x_zp"], ["x_q"]),
      node("DequantizeLinear", ["x_q", "x_scale", "x_zp"], ["x_dq"]),
      node("DequantizeLinear", ["w1_q", "w1_scale", "w1_zp"], ["w1_dq"]),
      node("Conv", ["x_dq", "w1_dq", "b1"], ["c1"], { kernel_shape: [11, 11], strides: [4, 4] }),
    ];
    init = [
      f32("x_scale", xScale),
      u8("x_zp", 128),
      rawTensor("w1_q", DT.INT8, [8, 3, 11, 11], w1q),
      f32("w1_scale", wScale),
      i8("w1_zp", 0),
      floatTensor("b1", [8], new Float32Array(8)),
    ];
  }
  // A plain Uint8Array (protobufjs hands back a Node Buffer).
  return Uint8Array.from(encodeModel({
    name: `zoo-interface-${encoding}`,
    node: [...body, ...head],
    initializer: [...init, ...headInit],
    input: [floatValueInfo("data_0", [1, 3, 224, 224])],
    output: [floatValueInfo("softmaxout_1", [1, 1000])],
  }, "alexnet-edge tests"));
}

/** The real zoo entry of an encoding, re-pinned to a small model's bytes. */
export function zooTestEntry(
  encoding: ZooEncoding,
  bytes: Uint8Array,
  urls: string[] = [],
): ZooEntry {
  const name =
    { fp32: "bvlcalexnet-12", qoperator: "bvlcalexnet-12-int8", qdq: "bvlcalexnet-12-qdq" }[
      encoding
    ];
  const real = findZooEntry(name)!;
  const pin = pinOf(bytes);
  const manifest = zooManifest(real);
  manifest.provenance = { kind: "pretrained", source: real.source, sha256: pin.sha256 };
  return { ...real, ...pin, urls, manifest };
}
