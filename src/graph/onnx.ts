/**
 * Thin helpers over onnx-proto for building graphs by hand: typed attribute,
 * tensor and value-info constructors, so layer code reads like the paper.
 *
 * @module
 */
import onnxProto from "onnx-proto";
import { toNumber } from "./attributes.ts";

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

/** The typed arrays {@linkcode tensorValues} returns, one per element type. */
export type TensorArray = Int8Array | Uint8Array | Int32Array | Float32Array | Float64Array;

const DT = onnx.TensorProto.DataType;

/** Copies raw little-endian bytes into an aligned buffer (weights: one copy, no per-value loop). */
function fromRaw<T>(raw: Uint8Array, make: (b: ArrayBuffer) => T): T {
  const copy = new Uint8Array(raw.length);
  copy.set(raw);
  return make(copy.buffer);
}

/** IEEE 754 half-precision bits -> the float they stand for. */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** The values as stored, in the typed array of the element type (before the count check). */
function storedValues(t: onnxProto.onnx.ITensorProto): TensorArray {
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const ints = t.int32Data ?? [];
  switch (t.dataType) {
    case DT.INT8:
      return raw ? fromRaw(raw, (b) => new Int8Array(b)) : Int8Array.from(ints);
    case DT.UINT8:
      return raw ? fromRaw(raw, (b) => new Uint8Array(b)) : Uint8Array.from(ints);
    case DT.INT32:
      return raw ? fromRaw(raw, (b) => new Int32Array(b)) : Int32Array.from(ints);
    case DT.FLOAT:
      return raw ? fromRaw(raw, (b) => new Float32Array(b)) : Float32Array.from(t.floatData ?? []);
    case DT.FLOAT16: // float16 bits sit in int32Data when not raw
      return Float32Array.from(raw ? fromRaw(raw, (b) => new Uint16Array(b)) : ints, halfToFloat);
    case DT.DOUBLE:
      return raw ? fromRaw(raw, (b) => new Float64Array(b)) : Float64Array.from(t.doubleData ?? []);
    case DT.INT64:
      return raw
        ? Float64Array.from(fromRaw(raw, (b) => new BigInt64Array(b)), Number)
        : Float64Array.from(t.int64Data ?? [], toNumber);
    default:
      throw new TypeError(
        `Cannot read initializer ${t.name}: element type ${t.dataType} is not supported`,
      );
  }
}

/**
 * An initializer's values (a copy), read from `rawData` (little-endian) or from the
 * typed field its element type uses: int8, uint8, int32 and float32 as their own typed
 * arrays; float16 widened to Float32Array; double, and int64 (shapes; exact up to
 * 2^53), as Float64Array. Throws a TypeError for other element types and external
 * data, a RangeError when the count of values is not the product of the dims.
 *
 * @example
 * ```ts
 * tensorValues(floatTensor("w", [2], new Float32Array([1, 2]))); // Float32Array [1, 2]
 * tensorValues(int64Tensor("shape", [1, -1])); // Float64Array [1, -1]
 * ```
 */
export function tensorValues(t: onnxProto.onnx.ITensorProto): TensorArray {
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new TypeError(`Cannot read initializer ${t.name}: its data is outside the model`);
  }
  const values = storedValues(t);
  const count = (t.dims ?? []).reduce((n: number, d) => n * toNumber(d), 1);
  if (values.length !== count) {
    throw new RangeError(
      `Cannot read initializer ${t.name}: ${values.length} values for dims [${t.dims ?? []}]`,
    );
  }
  return values;
}

/**
 * An initializer's values as float32, integers as stored (not dequantized): for
 * drawing weights and reading shapes.
 *
 * @example
 * ```ts
 * tensorFloats(int64Tensor("shape", [1, -1])); // Float32Array [1, -1]
 * ```
 */
export function tensorFloats(t: onnxProto.onnx.ITensorProto): Float32Array {
  const values = tensorValues(t);
  return values instanceof Float32Array ? values : Float32Array.from(values);
}

/**
 * An int8 initializer's values without a copy when they are raw bytes (a view into the
 * model's buffer: int8 needs no alignment), else {@linkcode tensorValues}'s copy. For
 * weights: fc6's alone are 36 MiB. Writing to the view writes the model's bytes.
 *
 * @example
 * ```ts
 * int8View({ name: "w", dims: [2], dataType: 3, rawData: new Uint8Array([1, 255]) }); // [1, -1]
 * ```
 */
export function int8View(t: onnxProto.onnx.ITensorProto): Int8Array {
  if (t.dataType !== DT.INT8) throw new TypeError(`Cannot read initializer ${t.name} as int8`);
  const raw = t.rawData;
  return raw && raw.length > 0
    ? new Int8Array(raw.buffer, raw.byteOffset, raw.length)
    : tensorValues(t) as Int8Array;
}
