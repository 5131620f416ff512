import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import type onnxProto from "onnx-proto";
import { buildAlexNet } from "../../src/model/alexnet.ts";
import {
  decodeModel,
  encodeModel,
  floatTensor,
  floatValueInfo,
  int64Tensor,
  node,
  onnx,
} from "../../src/graph/onnx.ts";
import { partitionModel } from "../../src/graph/partition.ts";
import { countParameters } from "../../src/model/store.ts";
import { heUniform, mulberry32 } from "../../src/graph/weights.ts";
import { kernelRegistry } from "../../src/runtime/custom_ops.ts";
import { PartitionedRunner } from "../../src/runtime/partitioned.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const LRN = ["LRN"];
const lrnAttrs = { size: 5, alpha: { float: 1e-4 }, beta: { float: 0.75 }, bias: { float: 1 } };
const session = (b: Uint8Array) => ort.InferenceSession.create(b, { executionProviders: ["wasm"] });

Deno.test("the synthetic AlexNet splits at both LRNs into three self-contained graphs", async () => {
  const { parts } = partitionModel(buildAlexNet({ seed: 2 }), new Set(LRN));
  assert.deepEqual(parts.map((p) => p.kind), ["graph", "kernel", "graph", "kernel", "graph"]);
  assert.deepEqual(parts.map((p) => [p.inputs, p.outputs]), [
    [["data_0"], ["conv1_2"]],
    [["conv1_2"], ["norm1_1"]],
    [["norm1_1"], ["conv2_2"]],
    [["conv2_2"], ["norm2_1"]],
    [["norm2_1"], ["softmaxout_1"]],
  ]);
  // Each graph part holds only its own weights: together, exactly the model's.
  let total = 0;
  for (const p of parts) if (p.kind === "graph") total += await countParameters(p.bytes);
  assert.equal(total, 60_965_224);
  const first = parts[0];
  assert.ok(first.kind === "graph");
  const names = decodeModel(first.bytes).graph!.initializer!.map((i) => i.name);
  assert.deepEqual(names, ["conv1_w_0", "conv1_b_0"]);
});

Deno.test("a model without custom ops stays one part with its original bytes", () => {
  const bytes = buildZooShaped();
  const { parts } = partitionModel(bytes, new Set(["NoSuchOp"]));
  assert.equal(parts.length, 1);
  assert.ok(parts[0].kind === "graph" && parts[0].bytes === bytes);
});

/**
 * A small graph shaped like the zoo's bvlcalexnet: Conv -> Relu -> LRN -> MaxPool,
 * twice, then Reshape by a constant shape, Gemm, Dropout (inference no-op), Softmax.
 * x: [1, 3, 19, 19] -> [1, 10]
 */
function buildZooShaped(): Uint8Array {
  const r = mulberry32(11);
  return encodeModel({
    name: "zoo_shaped",
    node: [
      node("Conv", ["data_0", "conv1_w_0", "conv1_b_0"], ["conv1_1"], {
        kernel_shape: [3, 3],
        strides: [2, 2],
      }),
      node("Relu", ["conv1_1"], ["conv1_2"]),
      node("LRN", ["conv1_2"], ["norm1_1"], lrnAttrs),
      node("MaxPool", ["norm1_1"], ["pool1_1"], {
        kernel_shape: [3, 3],
        strides: [2, 2],
        ceil_mode: 1,
      }),
      node("Conv", ["pool1_1", "conv2_w_0", "conv2_b_0"], ["conv2_1"], {
        kernel_shape: [3, 3],
        pads: [1, 1, 1, 1],
        group: 2,
      }),
      node("Relu", ["conv2_1"], ["conv2_2"]),
      node("LRN", ["conv2_2"], ["norm2_1"], lrnAttrs),
      node("MaxPool", ["norm2_1"], ["pool2_1"], {
        kernel_shape: [3, 3],
        strides: [2, 2],
        ceil_mode: 1,
      }),
      node("Reshape", ["pool2_1", "OC2_DUMMY_1"], ["OC2_DUMMY_0"]),
      node("Gemm", ["OC2_DUMMY_0", "fc6_w_0", "fc6_b_0"], ["fc6_1"], { transB: 1 }),
      node("Dropout", ["fc6_1"], ["fc6_3"]),
      node("Softmax", ["fc6_3"], ["softmaxout_1"], { axis: 1 }),
    ],
    initializer: [
      floatTensor("conv1_w_0", [8, 3, 3, 3], heUniform(216, 27, r)),
      floatTensor("conv1_b_0", [8], heUniform(8, 8, r)),
      floatTensor("conv2_w_0", [8, 4, 3, 3], heUniform(288, 36, r)),
      floatTensor("conv2_b_0", [8], heUniform(8, 8, r)),
      int64Tensor("OC2_DUMMY_1", [1, 32]),
      floatTensor("fc6_w_0", [10, 32], heUniform(320, 32, r)),
      floatTensor("fc6_b_0", [10], heUniform(10, 10, r)),
    ],
    input: [floatValueInfo("data_0", [1, 3, 19, 19])],
    output: [floatValueInfo("softmaxout_1", [1, 10])],
  }, "tests");
}

/**
 * A QDQ-quantized graph: the float input is quantized, a Conv runs on
 * dequantized int8 weights, and the LRN sits between DequantizeLinear and
 * QuantizeLinear, as quantizers leave it. x: [N, 4, 6, 7] -> [N, 6, 6, 7]
 */
function buildQdq(): Uint8Array {
  const r = mulberry32(5);
  const q = onnx.TensorProto.DataType;
  const scalar = (name: string, v: number): onnxProto.onnx.ITensorProto => ({
    name,
    dims: [],
    dataType: q.FLOAT,
    floatData: [v],
  });
  const zp = (name: string, type: number): onnxProto.onnx.ITensorProto => ({
    name,
    dims: [],
    dataType: type,
    int32Data: [0],
  });
  const w = Array.from({ length: 6 * 4 * 9 }, () => Math.round((r() * 2 - 1) * 127));
  return encodeModel({
    name: "qdq",
    node: [
      node("QuantizeLinear", ["x", "s_in", "z_u8"], ["x_q"]),
      node("DequantizeLinear", ["x_q", "s_in", "z_u8"], ["x_dq"]),
      node("DequantizeLinear", ["w_q", "s_w", "z_s8"], ["w_dq"]),
      node("Conv", ["x_dq", "w_dq"], ["c"], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      node("Relu", ["c"], ["r"]),
      node("QuantizeLinear", ["r", "s_act", "z_u8"], ["r_q"]),
      node("DequantizeLinear", ["r_q", "s_act", "z_u8"], ["r_dq"]),
      node("LRN", ["r_dq"], ["n"], {
        size: 3,
        alpha: { float: 0.5 },
        beta: { float: 0.75 },
        bias: { float: 1 },
      }),
      node("QuantizeLinear", ["n", "s_act", "z_u8"], ["n_q"]),
      node("DequantizeLinear", ["n_q", "s_act", "z_u8"], ["y"]),
    ],
    initializer: [
      scalar("s_in", 0.02),
      scalar("s_w", 0.01),
      scalar("s_act", 0.05),
      zp("z_u8", q.UINT8),
      zp("z_s8", q.INT8),
      { name: "w_q", dims: [6, 4, 3, 3], dataType: q.INT8, int32Data: w },
    ],
    input: [floatValueInfo("x", ["N", 4, 6, 7])],
    output: [floatValueInfo("y", ["N", 6, 6, 7])],
  }, "tests");
}

function random(n: number, seed: number, scale = 1): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

Deno.test({
  name: "a zoo-shaped graph (Reshape by constant, Dropout) gives the same output partitioned",
  ...t,
  async fn() {
    const bytes = buildZooShaped();
    const runner = await PartitionedRunner.create(bytes, kernelRegistry("custom"), session);
    assert.deepEqual(runner.layout, [["Conv", "Relu"], ["LRN"], ["MaxPool", "Conv", "Relu"], [
      "LRN",
    ], [
      "MaxPool",
      "Reshape",
      "Gemm",
      "Dropout",
      "Softmax",
    ]]);
    const whole = await session(bytes);
    const x = new ort.Tensor("float32", random(3 * 19 * 19, 1, 2), [1, 3, 19, 19]);
    const ours = (await runner.run({ data_0: x }, ["softmaxout_1"])).outputs.softmaxout_1;
    const theirs = (await whole.run({ data_0: x })).softmaxout_1;
    assert.deepEqual(ours.dims, [1, 10]);
    assert.ok(maxDiff(ours.data as Float32Array, theirs.data as Float32Array) <= 1e-6);
  },
});

Deno.test({
  name: "a QDQ graph with DequantizeLinear -> LRN -> QuantizeLinear runs partitioned, batch 3",
  ...t,
  async fn() {
    const bytes = buildQdq();
    const runner = await PartitionedRunner.create(bytes, kernelRegistry("custom"), session);
    assert.deepEqual(runner.layout.map((ops) => ops.at(-1)), [
      "DequantizeLinear",
      "LRN",
      "DequantizeLinear",
    ]);
    const whole = await session(bytes);
    const x = new ort.Tensor("float32", random(3 * 4 * 6 * 7, 2, 2.5), [3, 4, 6, 7]);
    const { outputs, intermediates } = await runner.run({ x }, ["y"], { capture: true });
    const theirs = (await whole.run({ x })).y.data as Float32Array;
    // Our LRN differs from onnxruntime's by float rounding, which can move a value
    // across a quantization boundary: at most one step (scale 0.05).
    const d = maxDiff(outputs.y.data as Float32Array, theirs);
    assert.ok(d <= 0.05 + 1e-6, `max diff ${d}`);
    assert.deepEqual(Object.keys(intermediates!).sort(), ["n", "r_dq", "y"]);
    assert.deepEqual(intermediates!.n.dims, [3, 6, 6, 7]);
  },
});

Deno.test({
  name: "runs reuse kernel buffers without corrupting earlier results",
  ...t,
  async fn() {
    const bytes = buildZooShaped();
    const runner = await PartitionedRunner.create(bytes, kernelRegistry("custom"), session);
    const run = async (
      seed: number,
    ) => (await runner.run({
      data_0: new ort.Tensor("float32", random(3 * 19 * 19, seed), [1, 3, 19, 19]),
    }, [
      "softmaxout_1",
    ], { capture: true }));
    const a = await run(1);
    const snapshot = a.intermediates!.norm1_1.data.slice();
    await run(2);
    assert.deepEqual(a.intermediates!.norm1_1.data, snapshot);
  },
});
