import assert from "node:assert/strict";
import type onnxProto from "onnx-proto";
import {
  decodeModel,
  encodeModel,
  floatTensor,
  int64Tensor,
  int8View,
  node,
  onnx,
  tensorFloats,
  tensorValues,
} from "../../src/graph/onnx.ts";
import {
  attribute,
  floatAttr,
  intAttr,
  intsAttr,
  stringAttr,
  toNumber,
} from "../../src/graph/attributes.ts";

const T = onnx.TensorProto.DataType;

function raw(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** A tensor after a round trip through protobuf, as a loaded model holds it. */
function decoded(t: onnxProto.onnx.ITensorProto): onnxProto.onnx.ITensorProto {
  const bytes = encodeModel({ name: "g", node: [], initializer: [t] }, "test");
  return decodeModel(bytes).graph!.initializer![0];
}

Deno.test("tensorValues returns each element type's own typed array, raw or typed field", () => {
  const cases: [onnxProto.onnx.ITensorProto, ArrayLike<number>, string][] = [
    [{ name: "a", dims: [2], dataType: T.INT8, rawData: raw(new Int8Array([-128, 7])) }, [
      -128,
      7,
    ], "Int8Array"],
    [{ name: "b", dims: [2], dataType: T.INT8, int32Data: [-3, 4] }, [-3, 4], "Int8Array"],
    [{ name: "c", dims: [2], dataType: T.UINT8, int32Data: [0, 255] }, [0, 255], "Uint8Array"],
    [{ name: "d", dims: [2], dataType: T.INT32, rawData: raw(new Int32Array([-5, 1 << 30])) }, [
      -5,
      1 << 30,
    ], "Int32Array"],
    [
      { name: "e", dims: [1, 2], dataType: T.FLOAT, floatData: [1.5, -2] },
      [1.5, -2],
      "Float32Array",
    ],
    [{ name: "f", dims: [2], dataType: T.DOUBLE, doubleData: [0.1, 2] }, [0.1, 2], "Float64Array"],
    [{ name: "g", dims: [2], dataType: T.DOUBLE, rawData: raw(new Float64Array([0.1, -3])) }, [
      0.1,
      -3,
    ], "Float64Array"],
  ];
  for (const [t, want, type] of cases) {
    for (const u of [t, decoded(t)]) {
      const got = tensorValues(u);
      assert.equal(got.constructor.name, type, `${t.name}: ${got.constructor.name}`);
      assert.deepEqual(Array.from(got), Array.from(want), t.name!);
    }
  }
});

Deno.test("tensorValues reads int64 shapes from int64Data and from raw bytes", () => {
  const shape = int64Tensor("s", [1, -1]);
  assert.deepEqual(Array.from(tensorValues(shape)), [1, -1]);
  assert.deepEqual(Array.from(tensorValues(decoded(shape))), [1, -1]); // Long values
  const bytes = {
    name: "r",
    dims: [2],
    dataType: T.INT64,
    rawData: raw(new BigInt64Array([0n, 9216n])),
  };
  assert.deepEqual(Array.from(tensorValues(bytes)), [0, 9216]);
});

Deno.test("tensorValues widens float16, raw and as bits in int32Data", () => {
  const half = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7c00]); // 1, -2, 2^-24, +inf
  const want = [1, -2, 2 ** -24, Infinity];
  const fromRaw = { name: "h", dims: [4], dataType: T.FLOAT16, rawData: raw(half) };
  const fromInts = { name: "h", dims: [4], dataType: T.FLOAT16, int32Data: Array.from(half) };
  assert.deepEqual(Array.from(tensorValues(fromRaw)), want);
  assert.deepEqual(Array.from(tensorValues(fromInts)), want);
  assert.ok(tensorValues(fromRaw) instanceof Float32Array);
});

Deno.test("tensorValues copies: changing the result leaves the model's bytes alone", () => {
  const bytes = raw(new Float32Array([1, 2]));
  const values = tensorValues({ name: "w", dims: [2], dataType: T.FLOAT, rawData: bytes });
  values[0] = 9;
  assert.deepEqual(Array.from(new Float32Array(bytes.slice().buffer)), [1, 2]);
});

Deno.test("tensorValues reads raw data at an odd offset of a larger buffer", () => {
  const buffer = new Uint8Array(13);
  buffer.set(raw(new Float32Array([3.25, -1, 8])), 1);
  const t = { name: "w", dims: [3], dataType: T.FLOAT, rawData: buffer.subarray(1) };
  assert.deepEqual(Array.from(tensorValues(t)), [3.25, -1, 8]);
});

Deno.test("tensorValues refuses a count of values that is not the product of the dims", () => {
  assert.throws(
    () => tensorValues({ name: "w", dims: [3], dataType: T.FLOAT, floatData: [1, 2] }),
    (e: Error) => e instanceof RangeError && /2 values for dims \[3\]/.test(e.message),
  );
  assert.throws(
    () => tensorValues({ name: "w", dims: [2, 2], dataType: T.INT8, rawData: new Uint8Array(5) }),
    RangeError,
  );
  // A scalar (no dims) holds one value.
  assert.deepEqual(Array.from(tensorValues({ name: "s", dataType: T.FLOAT, floatData: [4] })), [4]);
  assert.throws(() => tensorValues({ name: "s", dataType: T.FLOAT, floatData: [] }), RangeError);
});

Deno.test("tensorValues refuses external data and element types it does not read", () => {
  assert.throws(
    () =>
      tensorValues({
        name: "w",
        dims: [2],
        dataType: T.FLOAT,
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [{ key: "location", value: "w.bin" }],
      }),
    (e: Error) => e instanceof TypeError && /outside the model/.test(e.message),
  );
  assert.throws(
    () => tensorValues({ name: "b", dims: [1], dataType: T.BOOL, int32Data: [1] }),
    (e: Error) => e instanceof TypeError && /element type 9/.test(e.message),
  );
});

Deno.test("tensorFloats reads float, int8, uint8, int64 and float16 as float32", () => {
  assert.deepEqual(
    tensorFloats(floatTensor("f", [2], new Float32Array([1.5, -2]))),
    new Float32Array([1.5, -2]),
  );
  const ints = (dataType: number, v: number[]) => ({
    name: "i",
    dims: [2],
    dataType,
    int32Data: v,
  });
  assert.deepEqual(tensorFloats(ints(T.INT8, [-127, 5])), new Float32Array([-127, 5]));
  assert.deepEqual(tensorFloats(ints(T.UINT8, [0, 255])), new Float32Array([0, 255]));
  assert.deepEqual(tensorFloats(int64Tensor("s", [1, 9216])), new Float32Array([1, 9216]));
  const half = new Uint16Array([0x3c00, 0xc000]);
  assert.deepEqual(
    tensorFloats({ name: "h", dims: [2], dataType: T.FLOAT16, rawData: raw(half) }),
    new Float32Array([1, -2]),
  );
});

Deno.test("int8View is a view into raw bytes, a copy otherwise, and int8 only", () => {
  const bytes = new Uint8Array([1, 255, 128]);
  const view = int8View({ name: "w", dims: [3], dataType: T.INT8, rawData: bytes });
  assert.deepEqual(Array.from(view), [1, -1, -128]);
  view[0] = 5;
  assert.equal(bytes[0], 5);
  assert.deepEqual(
    Array.from(int8View({ name: "w", dims: [2], dataType: T.INT8, int32Data: [-2, 3] })),
    [-2, 3],
  );
  assert.throws(
    () => int8View({ name: "u", dims: [1], dataType: T.UINT8, rawData: new Uint8Array(1) }),
    TypeError,
  );
});

Deno.test("attribute readers give the value when present and the fallback when absent", () => {
  const n = node("Conv", ["x", "w"], ["y"], {
    group: 2,
    alpha: { float: 0.5 },
    pads: [1, 2, 3, 4],
    auto_pad: "NOTSET",
  });
  for (const m of [n, decodedNode(n)]) {
    assert.equal(intAttr(m, "group", 1), 2);
    assert.equal(intAttr(m, "axis", -1), -1);
    assert.equal(floatAttr(m, "alpha", 1), 0.5);
    assert.equal(floatAttr(m, "beta", 0.75), 0.75);
    assert.deepEqual(intsAttr(m, "pads"), [1, 2, 3, 4]);
    assert.equal(intsAttr(m, "strides"), undefined);
    assert.equal(stringAttr(m, "auto_pad"), "NOTSET");
    assert.equal(stringAttr(m, "mode"), undefined);
    assert.equal(attribute(m, "group")?.name, "group");
    assert.equal(attribute(m, "dilations"), undefined);
  }
  const bare: onnxProto.onnx.INodeProto = { opType: "Relu" };
  assert.equal(intAttr(bare, "axis", 3), 3);
  assert.equal(intsAttr(bare, "pads"), undefined);
});

Deno.test("intAttr reads negative and int64 values decoded as Long", () => {
  const n = decodedNode(node("Flatten", ["x"], ["y"], { axis: -1 }));
  assert.equal(typeof n.attribute![0].i, "object"); // a Long: what protobufjs gives for int64
  assert.equal(intAttr(n, "axis", 1), -1);
  assert.equal(toNumber(2 ** 40), 2 ** 40);
  assert.equal(toNumber(BigInt(7)), 7);
});

function decodedNode(n: onnxProto.onnx.INodeProto): onnxProto.onnx.INodeProto {
  return decodeModel(encodeModel({ name: "g", node: [n] }, "test")).graph!.node![0];
}
