/**
 * Shared by the int8 kernel tests and bench/qlinear_bench.ts: seeded random data,
 * exact-comparison reports, and onnxruntime-web one-node sessions (fp32 Gemm and
 * Conv, QuantizeLinear, and the QDQ Gemm) as independent baselines.
 *
 * @module
 */
import * as ort from "onnxruntime-web";
import type onnxProto from "onnx-proto";
import { encodeModel, floatTensor, floatValueInfo, node, onnx } from "../../../src/graph/onnx.ts";

/**
 * Deterministic uniform numbers in [0, 1) (mulberry32), so a failure reproduces.
 *
 * @example
 * ```ts
 * import { seeded } from "./_q_helpers.ts";
 *
 * const next = seeded(42);
 * console.log(next() < 1); // true
 * ```
 */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `length` integers uniform in [lo, hi] from `seed`. */
export function randomInts<T extends Int8Array | Uint8Array>(
  make: new (length: number) => T,
  length: number,
  seed: number,
  lo: number,
  hi: number,
): T {
  const next = seeded(seed);
  const out = new make(length);
  for (let i = 0; i < length; i++) out[i] = lo + Math.floor(next() * (hi - lo + 1));
  return out;
}

/** `length` floats uniform in [lo, hi) from `seed`. */
export function randomFloats(length: number, seed: number, lo = -1, hi = 1): Float32Array {
  const next = seeded(seed);
  return Float32Array.from({ length }, () => lo + (hi - lo) * next());
}

/**
 * "" when `actual` equals `expected` element for element (Object.is, so -0 and NaN
 * count), else how many differ and the first five, for the failure message.
 */
export function mismatches(actual: ArrayLike<number>, expected: ArrayLike<number>): string {
  if (actual.length !== expected.length) {
    return `length ${actual.length}, expected ${expected.length}`;
  }
  const bad: string[] = [];
  let count = 0;
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      if (count++ < 5) bad.push(`  [${i}]: got ${actual[i]}, expected ${expected[i]}`);
    }
  }
  return count === 0 ? "" : `${count} of ${expected.length} differ:\n${bad.join("\n")}`;
}

/** A one-node onnxruntime-web session with one float input "x" and one output "y". */
export interface OrtNode {
  run(x: Float32Array, dims: number[]): Promise<Float32Array | Uint8Array>;
  release(): Promise<void>;
}

async function session(graph: onnxProto.onnx.IGraphProto): Promise<OrtNode> {
  const s = await ort.InferenceSession.create(encodeModel(graph, "alexnet-edge-tests"), {
    executionProviders: ["wasm"],
  });
  return {
    async run(x, dims) {
      const out = await s.run({ x: new ort.Tensor("float32", x, dims) });
      return out.y.data as Float32Array | Uint8Array;
    },
    release: () => s.release(),
  };
}

/** A uint8 initializer (a zero point). */
function uint8Tensor(name: string, dims: number[], data: Uint8Array): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: onnx.TensorProto.DataType.UINT8, rawData: data };
}

/** An int8 initializer (quantized weights). */
function int8Tensor(name: string, dims: number[], data: Int8Array): onnxProto.onnx.ITensorProto {
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { name, dims, dataType: onnx.TensorProto.DataType.INT8, rawData: raw };
}

/**
 * onnxruntime-web's fp32 Gemm (transB): y = x W^T + bias, x: [N, K], W: [M, K].
 * Set `ort.env.wasm.numThreads` before the first session.
 */
export function createOrtGemm(w: Float32Array, m: number, k: number, bias: Float32Array) {
  return session({
    name: "gemm",
    node: [node("Gemm", ["x", "w", "b"], ["y"], { transB: 1 })],
    initializer: [floatTensor("w", [m, k], w), floatTensor("b", [m], bias)],
    input: [floatValueInfo("x", ["N", k])],
    output: [floatValueInfo("y", ["N", m])],
  });
}

/** onnxruntime-web's fp32 Conv with ONNX attributes. x: [N, C, H, W]. */
export function createOrtConv(
  w: Float32Array,
  shape: readonly number[],
  bias: Float32Array,
  attrs: {
    group: number;
    strides: readonly number[];
    pads: readonly number[];
    dilations: readonly number[];
  },
) {
  const { group, strides, pads, dilations } = attrs;
  return session({
    name: "conv",
    node: [
      node("Conv", ["x", "w", "b"], ["y"], {
        group,
        strides: [...strides],
        pads: [...pads],
        dilations: [...dilations],
      }),
    ],
    initializer: [floatTensor("w", [...shape], w), floatTensor("b", [shape[0]], bias)],
    input: [floatValueInfo("x", ["N", shape[1] * attrs.group, "H", "W"])],
    output: [floatValueInfo("y", ["N", shape[0], "OH", "OW"])],
  });
}

/** onnxruntime-web's QuantizeLinear to uint8: x: [L] float32 -> y: [L] uint8. */
export function createOrtQuantizeLinear(len: number, scale: number, zeroPoint: number) {
  return session({
    name: "quantize",
    node: [node("QuantizeLinear", ["x", "s", "z"], ["y"])],
    initializer: [
      floatTensor("s", [], new Float32Array([scale])),
      uint8Tensor("z", [], new Uint8Array([zeroPoint])),
    ],
    input: [floatValueInfo("x", [len])],
    output: [{
      name: "y",
      type: {
        tensorType: {
          elemType: onnx.TensorProto.DataType.UINT8,
          shape: { dim: [{ dimValue: len }] },
        },
      },
    }],
  });
}

/**
 * The QDQ Gemm our quantizer writes (src/model/quantize.ts), on onnxruntime-web:
 * x -> QuantizeLinear(s_x, z_x) -> DequantizeLinear -> Gemm(W_int8 dequantized per
 * row, float bias) -> y, optionally -> Relu.
 */
export function createOrtQdqGemm(
  layer: {
    weights: Int8Array;
    m: number;
    k: number;
    weightScales: Float32Array;
    bias: Float32Array;
  },
  xScale: number,
  xZeroPoint: number,
  relu: boolean,
) {
  const { weights, m, k, weightScales, bias } = layer;
  return session({
    name: "qdq_gemm",
    node: [
      node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
      node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
      node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], { axis: 0 }),
      node("Gemm", ["xd", "wd", "b"], [relu ? "g" : "y"], { transB: 1 }),
      ...(relu ? [node("Relu", ["g"], ["y"])] : []),
    ],
    initializer: [
      floatTensor("xs", [], new Float32Array([xScale])),
      uint8Tensor("xz", [], new Uint8Array([xZeroPoint])),
      int8Tensor("wq", [m, k], weights),
      floatTensor("ws", [m], weightScales),
      int8Tensor("wz", [m], new Int8Array(m)),
      floatTensor("b", [m], bias),
    ],
    input: [floatValueInfo("x", ["N", k])],
    output: [floatValueInfo("y", ["N", m])],
  });
}

/** onnxruntime-web's MaxPool (2-D) with ONNX attributes. x: [N, C, H, W]. */
export function createOrtMaxPool(attrs: {
  kernelShape: readonly number[];
  strides?: readonly number[];
  pads?: readonly number[];
  dilations?: readonly number[];
  ceilMode?: boolean;
}) {
  return session({
    name: "maxpool",
    node: [
      node("MaxPool", ["x"], ["y"], {
        kernel_shape: [...attrs.kernelShape],
        strides: [...(attrs.strides ?? [1, 1])],
        pads: [...(attrs.pads ?? [0, 0, 0, 0])],
        dilations: [...(attrs.dilations ?? [1, 1])],
        ceil_mode: attrs.ceilMode ? 1 : 0,
      }),
    ],
    initializer: [],
    input: [floatValueInfo("x", ["N", "C", "H", "W"])],
    output: [floatValueInfo("y", ["N", "C", "OH", "OW"])],
  });
}

/** onnxruntime-web's Softmax over axis 1 of x: [N, K]. */
export function createOrtSoftmax() {
  return session({
    name: "softmax",
    node: [node("Softmax", ["x"], ["y"], { axis: 1 })],
    initializer: [],
    input: [floatValueInfo("x", ["N", "K"])],
    output: [floatValueInfo("y", ["N", "K"])],
  });
}
