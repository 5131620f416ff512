/**
 * Thin helpers over onnx-proto for building graphs by hand: typed attribute,
 * tensor and value-info constructors, so layer code reads like the paper.
 *
 * @module
 */
import onnxProto from "onnx-proto";

/** The onnx-proto namespace (the package exports it on its default object). */
export const onnx: typeof onnxProto.onnx = onnxProto.onnx;

/** Opset the graphs are built against: MaxPool ceil_mode needs >= 10, Softmax axis semantics 13. */
export const OPSET = 13;

const A = onnx.AttributeProto.AttributeType;

/** Attribute value kinds accepted by {@linkcode node}. */
export type AttrValue = number | number[] | string | { float: number };

function attribute(name: string, value: AttrValue): onnxProto.onnx.IAttributeProto {
  if (typeof value === "string") {
    return { name, type: A.STRING, s: new TextEncoder().encode(value) };
  }
  if (typeof value === "object" && !Array.isArray(value)) {
    return { name, type: A.FLOAT, f: value.float };
  }
  if (Array.isArray(value)) return { name, type: A.INTS, ints: value };
  return { name, type: A.INT, i: value };
}

/**
 * Builds a node. Integers become INT(S) attributes; wrap floats as `{ float: x }`.
 *
 * @example
 * ```ts
 * node("Relu", ["conv1_1"], ["conv1_2"]);
 * ```
 */
export function node(
  opType: string,
  inputs: string[],
  outputs: string[],
  attrs: Record<string, AttrValue> = {},
  name = outputs[0],
): onnxProto.onnx.INodeProto {
  return {
    opType,
    input: inputs,
    output: outputs,
    name,
    attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
  };
}

/** A float32 initializer holding `data` (little-endian raw bytes, no copy on little-endian hosts). */
export function floatTensor(
  name: string,
  dims: number[],
  data: Float32Array,
): onnxProto.onnx.ITensorProto {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (expected !== data.length) {
    throw new RangeError(`Cannot build tensor ${name}: ${data.length} values for dims [${dims}]`);
  }
  return {
    name,
    dims,
    dataType: onnx.TensorProto.DataType.FLOAT,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

/** An int64 initializer (shapes for Reshape and the like). */
export function int64Tensor(name: string, values: number[]): onnxProto.onnx.ITensorProto {
  return {
    name,
    dims: [values.length],
    dataType: onnx.TensorProto.DataType.INT64,
    int64Data: values,
  };
}

/** A float32 graph input/output; a string dimension is symbolic (e.g. the batch "N"). */
export function floatValueInfo(
  name: string,
  shape: (number | string)[],
): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: {
          dim: shape.map((d) => typeof d === "string" ? { dimParam: d } : { dimValue: d }),
        },
      },
    },
  };
}

/** Wraps a graph in a model at {@linkcode OPSET} and serializes it. */
export function encodeModel(graph: onnxProto.onnx.IGraphProto, producer: string): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: producer,
    opsetImport: [{ domain: "", version: OPSET }],
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Parses serialized ONNX bytes. Throws on malformed protobuf. */
export function decodeModel(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

/** Copies raw little-endian bytes into an aligned buffer of the given element type. */
function fromRaw<T>(raw: Uint8Array, make: (b: ArrayBuffer) => T): T {
  const copy = new Uint8Array(raw.length);
  copy.set(raw);
  return make(copy.buffer);
}

/** An initializer's values as the typed array of its element type (int8, int32, uint8, float32). */
export function tensorValues(
  t: onnxProto.onnx.ITensorProto,
): Int8Array | Uint8Array | Int32Array | Float32Array {
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  switch (t.dataType) {
    case onnx.TensorProto.DataType.INT8:
      return raw ? fromRaw(raw, (b) => new Int8Array(b)) : Int8Array.from(t.int32Data ?? []);
    case onnx.TensorProto.DataType.UINT8:
      return raw ? fromRaw(raw, (b) => new Uint8Array(b)) : Uint8Array.from(t.int32Data ?? []);
    case onnx.TensorProto.DataType.INT32:
      return raw ? fromRaw(raw, (b) => new Int32Array(b)) : Int32Array.from(t.int32Data ?? []);
    case onnx.TensorProto.DataType.FLOAT:
      return raw ? fromRaw(raw, (b) => new Float32Array(b)) : Float32Array.from(t.floatData ?? []);
    default:
      throw new TypeError(
        `Cannot read initializer ${t.name}: element type ${t.dataType} is not supported`,
      );
  }
}
