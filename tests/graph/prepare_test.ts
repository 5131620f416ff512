import assert from "node:assert/strict";
import { buildAlexNet } from "../../src/model/alexnet.ts";
import {
  decodeModel,
  encodeModel,
  floatValueInfo,
  node,
  onnx,
  prepare,
} from "../../src/graph/mod.ts";
import { partitionModel } from "../../src/graph/partition.ts";
import { rewriteQOperator } from "../../src/graph/qoperator.ts";
import { dequantizeForGpu } from "../../src/graph/webgpu_dequantize.ts";
import { buildQOperatorAlexNet } from "../model/_qoperator_models.ts";

const T = onnx.TensorProto.DataType;
const SMALL = { inputSize: 67, convDivisor: 8, fcWidth: 256, classes: 100 };

/** x: [1, 1, 4, 4] -> Conv with int8 weights behind a DequantizeLinear -> y: [1, 1, 2, 2]. */
function qdqConv(): Uint8Array {
  return encodeModel({
    name: "qdq",
    node: [
      node("DequantizeLinear", ["w_q", "w_s"], ["w"]),
      node("Conv", ["x", "w"], ["y"], { kernel_shape: [3, 3] }),
    ],
    initializer: [
      {
        name: "w_q",
        dims: [1, 1, 3, 3],
        dataType: T.INT8,
        int32Data: [1, -2, 3, 4, 5, 6, 7, 8, 9],
      },
      { name: "w_s", dims: [], dataType: T.FLOAT, floatData: [0.5] },
    ],
    input: [floatValueInfo("x", [1, 1, 4, 4])],
    output: [floatValueInfo("y", [1, 1, 2, 2])],
  }, "test");
}

Deno.test("native: the plan is the model's bytes, as given", async () => {
  const bytes = buildAlexNet({ inputSize: 67 });
  const plan = await prepare(bytes, "native");
  assert.equal(plan.target, "native");
  assert.equal(plan.bytes, bytes);
});

Deno.test("wasm: the graph is cut at the kernels' ops, as partitionModel cuts it", async () => {
  const bytes = buildAlexNet({ inputSize: 67 });
  const plan = await prepare(bytes, "wasm", { kernels: { ops: new Set(["LRN"]) } });
  assert.equal(plan.target, "wasm");
  assert.equal(plan.bytes, bytes);
  assert.equal(plan.rewritten, false);
  assert.deepEqual(plan.parts.map((p) => p.kind), ["graph", "kernel", "graph", "kernel", "graph"]);
  const direct = partitionModel(bytes, new Set(["LRN"]));
  assert.deepEqual(
    plan.parts.map((p) => [p.inputs, p.outputs]),
    direct.parts.map((p) => [
      p.inputs,
      p.outputs,
    ]),
  );
  for (const [i, p] of plan.parts.entries()) {
    const q = direct.parts[i];
    if (p.kind === "graph" && q.kind === "graph") assert.deepEqual(p.bytes, q.bytes);
  }
  assert.deepEqual(plan.inputShapes, { data_0: [null, 3, 67, 67] });
  assert.deepEqual(plan.outputs, ["softmaxout_1"]);
  // No kernels: onnxruntime takes the whole graph, the bytes themselves.
  const whole = await prepare(bytes, "wasm");
  assert.equal(whole.parts.length, 1);
  assert.ok(whole.parts[0].kind === "graph" && whole.parts[0].bytes === bytes);
});

Deno.test({
  name: "wasm with int8 kernels: a QOperator file becomes rewriteQOperator's QDQ graph, logged",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // Copies with new Uint8Array: the builder's bytes are a Node Buffer, whose slice is a view.
    const bytes = new Uint8Array((await buildQOperatorAlexNet(SMALL)).bytes);
    const lines: string[] = [];
    const plan = await prepare(new Uint8Array(bytes), "wasm", {
      int8Kernels: true,
      log: (l) => lines.push(l),
    });
    assert.equal(plan.rewritten, true);
    assert.deepEqual(plan.bytes, rewriteQOperator(bytes).bytes);
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^QOperator int8 model rewritten to QDQ for our int8 kernels/);
    assert.ok(!plan.parts.some((p) => p.kind === "graph" && /QLinear/.test(p.ops.join())));

    // Without int8 kernels the file goes to onnxruntime as it is.
    const kept = await prepare(bytes, "wasm", { log: (l) => lines.push(l) });
    assert.equal(kept.bytes, bytes);
    assert.equal(kept.rewritten, false);
    assert.equal(lines.length, 1);

    // release: the caller's buffer is detached once the rewritten copy replaces it.
    const given = new Uint8Array(bytes);
    const released = await prepare(given, "wasm", { int8Kernels: true, release: true });
    assert.equal(given.buffer.detached, true);
    assert.deepEqual(released.bytes, plan.bytes);
    const kept2 = new Uint8Array(bytes);
    await prepare(kept2, "wasm", { int8Kernels: true });
    assert.deepEqual(kept2, bytes);
  },
});

Deno.test("webgpu: quantized nodes are rewritten to float before the cut, logged", async () => {
  const bytes = qdqConv();
  const lines: string[] = [];
  const plan = await prepare(bytes, "webgpu", { log: (l) => lines.push(l) });
  assert.equal(plan.target, "webgpu");
  assert.equal(plan.rewritten, true);
  assert.deepEqual(plan.bytes, dequantizeForGpu(bytes).bytes);
  assert.deepEqual(lines, ["webgpu: 1 quantize/dequantize nodes rewritten to float"]);
  assert.deepEqual(plan.parts.map((p) => p.kind === "graph" && p.ops), [["Conv"]]);
  const w = decodeModel(plan.bytes).graph!.initializer!.find((t) => t.name === "w");
  assert.equal(w?.dataType, T.FLOAT);
  // A float model passes unchanged, and nothing is logged.
  const float = buildAlexNet({ inputSize: 67 });
  const same = await prepare(float, "webgpu", { log: (l) => lines.push(l) });
  assert.equal(same.rewritten, false);
  assert.equal(lines.length, 1);
});

Deno.test({
  name: "webgpu refuses a quantized op it has no float rewrite for; bad bytes are refused",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { bytes } = await buildQOperatorAlexNet(SMALL); // its fc layers add with QLinearAdd
    await assert.rejects(() => prepare(bytes, "webgpu"), /QLinearAdd/);
    const junk = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]);
    await assert.rejects(() => prepare(junk, "wasm"));
    await assert.rejects(() => prepare(junk, "webgpu"));
  },
});
