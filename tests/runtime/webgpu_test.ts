import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import * as ort from "onnxruntime-web";
import { createApp } from "../../src/api/mod.ts";
import { Classifier } from "../../src/classify/mod.ts";
import { decodeImage, preprocess } from "../../src/image/mod.ts";
import { encodeModel, floatTensor, floatValueInfo, node, onnx } from "../../src/graph/onnx.ts";
import { ensureSyntheticModel, loadModel } from "../../src/model/store.ts";
import { heUniform, mulberry32 } from "../../src/graph/weights.ts";
import type { Backend } from "../../src/runtime/backend.ts";
import { createBackend, createWasmBackend } from "../../src/runtime/mod.ts";
import { createWebGpuBackend, type GpuEntry } from "../../src/runtime/webgpu.ts";
import { dequantizeForGpu, dequantizeValues } from "../../src/graph/webgpu_dequantize.ts";
import { buildTinyModel, fixture, writeTinyModel } from "../_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const TINY_IO = { inputName: "pixels", outputName: "logits" };

// --- Which adapter this machine has -----------------------------------------------------------

const gpu = (globalThis.navigator as { gpu?: GpuEntry }).gpu;
const adapter = await gpu?.requestAdapter().catch(() => null);
/** Why the tests that need a WebGPU adapter are skipped here, or undefined when they run. */
const noAdapter = !gpu
  ? "navigator.gpu is missing"
  : !adapter
  ? "navigator.gpu found no adapter (install Mesa's software Vulkan: apt-get install mesa-vulkan-drivers)"
  : undefined;
if (noAdapter && Deno.env.get("ALEXNET_REQUIRE_WEBGPU") === "1") {
  // CI sets this (.ci/run): there Mesa's lavapipe is installed, so a missing adapter is a failure.
  throw new Error(`ALEXNET_REQUIRE_WEBGPU=1, but ${noAdapter}`);
}
if (noAdapter) console.log(`webgpu_test: skipping the tests that need an adapter: ${noAdapter}`);

/**
 * navigator.gpu, with the devices it hands out kept for the test to destroy,
 * and the adapter optionally reported as a hardware one.
 */
function watchedGpu(options: { hardware?: boolean } = {}) {
  const devices: GPUDevice[] = [];
  const entry: GpuEntry = {
    async requestAdapter(o) {
      const real = await gpu!.requestAdapter(o);
      if (!real) return null;
      return new Proxy(real, {
        get(target, key) {
          if (key === "requestDevice") {
            return async (d?: GPUDeviceDescriptor) => {
              const device = await target.requestDevice(d);
              devices.push(device);
              return device;
            };
          }
          if (key === "info" && options.hardware) {
            return { ...target.info, description: "stand-in", isFallbackAdapter: false };
          }
          const value = Reflect.get(target, key, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    },
  };
  return { entry, devices };
}

/**
 * Destroys `device` right after the first command buffer submitted to its
 * queue: the device is lost in the middle of whatever run submitted it.
 */
function loseOnFirstSubmit(device: GPUDevice): { submits: number } {
  const proto = Object.getPrototypeOf(device.queue) as GPUQueue;
  const submit = proto.submit;
  const hook = { submits: 0 };
  proto.submit = function (this: GPUQueue, buffers: GPUCommandBuffer[]) {
    proto.submit = submit;
    submit.call(this, buffers);
    hook.submits++;
    device.destroy();
  };
  return hook;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

const top5 = (p: Float32Array) => [...p.keys()].sort((a, b) => p[b] - p[a] || a - b).slice(0, 5);

function tinyInput(n = 1): Float32Array {
  const random = mulberry32(3);
  return Float32Array.from({ length: n * 3 * 48 * 64 }, () => random() * 4 - 2);
}

// --- Falling back at start-up (no GPU needed) --------------------------------------------------

Deno.test({
  name: "webgpu asked for with no adapter falls back to wasm, logged, and serves",
  ...t,
  async fn() {
    const lines: string[] = [];
    const backend = await createBackend(buildTinyModel(64, 48), {
      ...TINY_IO,
      backend: "webgpu",
      gpu: { requestAdapter: () => Promise.resolve(null) },
      log: (l) => lines.push(l),
    });
    assert.equal(backend.name, "wasm");
    assert.deepEqual(lines, [
      "Cannot start the webgpu backend: navigator.gpu found no adapter; using wasm",
    ]);
    const out = await backend.run(tinyInput(), [1, 3, 48, 64]);
    assert.deepEqual(out.dims, [1, 4]);
    await backend.release();
  },
});

Deno.test({
  name: "a device that fails to initialise falls back to wasm with the reason logged",
  ...t,
  async fn() {
    const broken = {
      info: { description: "broken stand-in", isFallbackAdapter: false },
      limits: { maxBufferSize: 1 << 28, maxStorageBufferBindingSize: 1 << 27 },
      features: new Set<string>(),
      requestDevice: () => Promise.reject(new Error("device creation failed (forced)")),
    } as unknown as GPUAdapter;
    const lines: string[] = [];
    const backend = await createBackend(buildTinyModel(64, 48), {
      ...TINY_IO,
      backend: "auto",
      gpu: { requestAdapter: () => Promise.resolve(broken) },
      log: (l) => lines.push(l),
    });
    assert.equal(backend.name, "wasm");
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^Cannot start the webgpu backend: device creation failed \(forced\)/);
    assert.deepEqual((await backend.run(tinyInput(), [1, 3, 48, 64])).dims, [1, 4]);
    await backend.release();
  },
});

Deno.test({
  name: "auto leaves a fallback (software) adapter alone; webgpu by name takes it",
  ...t,
  async fn() {
    const software = {
      info: { description: "software stand-in", isFallbackAdapter: true },
      limits: { maxBufferSize: 1 << 28, maxStorageBufferBindingSize: 1 << 27 },
      features: new Set<string>(),
      requestDevice: () => Promise.reject(new Error("requestDevice reached")),
    } as unknown as GPUAdapter;
    const requestAdapter = () => Promise.resolve(software);
    const lines: string[] = [];
    const auto = await createBackend(buildTinyModel(64, 48), {
      ...TINY_IO,
      backend: "auto",
      gpu: { requestAdapter },
      log: (l) => lines.push(l),
    });
    assert.equal(auto.name, "wasm");
    assert.match(lines[0], /fallback \(software\) one \(software stand-in\)/);
    await auto.release();
    // By name the adapter is taken: this stand-in then fails at requestDevice.
    await assert.rejects(
      createWebGpuBackend(buildTinyModel(64, 48), {
        ...TINY_IO,
        gpu: { requestAdapter },
        allowFallbackAdapter: true,
      }),
      /requestDevice reached/,
    );
  },
});

// --- int8 models for the GPU (no GPU needed: the rewrite is checked on wasm) ------------------

/** Conv weights of the quantized tiny models: int8 per output channel, their scales, int32 bias. */
function quantizedConv() {
  const random = mulberry32(11);
  const wq = Int8Array.from({ length: 4 * 3 * 3 * 3 }, () => Math.round(random() * 254 - 127));
  const ws = new Float32Array([0.01, 0.02, 0.005, 0.03]);
  const bq = new Int32Array([100, -200, 0, 50]);
  const xs = 0.05;
  return { wq, ws, bq, xs };
}

const int8Tensor = (name: string, dims: number[], v: Int8Array) => ({
  name,
  dims,
  dataType: onnx.TensorProto.DataType.INT8,
  rawData: new Uint8Array(v.buffer.slice(0)),
});
const int32Tensor = (name: string, dims: number[], v: Int32Array) => ({
  name,
  dims,
  dataType: onnx.TensorProto.DataType.INT32,
  rawData: new Uint8Array(v.buffer.slice(0)),
});
const uint8Scalar = (name: string, v: number) => ({
  name,
  dims: [],
  dataType: onnx.TensorProto.DataType.UINT8,
  rawData: new Uint8Array([v]),
});
const int8Zeros = (name: string, n: number) => ({
  name,
  dims: [n],
  dataType: onnx.TensorProto.DataType.INT8,
  rawData: new Uint8Array(n),
});

/** The tail every tiny model shares: c1 [N, 4, H', W'] -> ReLU -> GAP -> Flatten -> Gemm -> logits. */
function tail(from: string) {
  const random = mulberry32(7);
  return {
    nodes: [
      node("Relu", [from], ["r1"]),
      node("GlobalAveragePool", ["r1"], ["g1"]),
      node("Flatten", ["g1"], ["f1"], { axis: 1 }),
      node("Gemm", ["f1", "w2", "b2"], ["logits"], { transB: 1 }),
    ],
    inits: [
      floatTensor("w2", [4, 4], heUniform(16, 4, random)),
      floatTensor("b2", [4], new Float32Array([0.1, -0.1, 0.2, 0])),
    ],
  };
}

const IO = {
  input: [floatValueInfo("pixels", ["N", 3, 48, 64])],
  output: [floatValueInfo("logits", ["N", 4])],
};

/** The float model whose weights are exactly the dequantized int8 ones. */
function referenceModel(): Uint8Array {
  const { wq, ws, bq, xs } = quantizedConv();
  const w = dequantizeValues(wq, [4, 3, 3, 3], ws, undefined, 0);
  const b = Float32Array.from(bq, (v, c) => v * xs * ws[c]);
  const { nodes, inits } = tail("c1");
  return encodeModel({
    name: "reference",
    node: [node("Conv", ["pixels", "w1", "b1"], ["c1"], { kernel_shape: [3, 3] }), ...nodes],
    initializer: [floatTensor("w1", [4, 3, 3, 3], w), floatTensor("b1", [4], b), ...inits],
    ...IO,
  }, "webgpu_test");
}

/** QDQ: x -> Q -> DQ -> Conv(DQ(w_int8, per channel), DQ(b_int32)) -> tail. */
function qdqModel(): Uint8Array {
  const { wq, ws, bq, xs } = quantizedConv();
  const { nodes, inits } = tail("c1");
  return encodeModel({
    name: "qdq",
    node: [
      node("QuantizeLinear", ["pixels", "xs", "xz"], ["xq"]),
      node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
      node("DequantizeLinear", ["wq", "ws"], ["wd"], { axis: 0 }),
      node("DequantizeLinear", ["bq", "bs"], ["bd"], { axis: 0 }),
      node("Conv", ["xd", "wd", "bd"], ["c1"], { kernel_shape: [3, 3] }),
      ...nodes,
    ],
    initializer: [
      floatTensor("xs", [], new Float32Array([xs])),
      uint8Scalar("xz", 128),
      int8Tensor("wq", [4, 3, 3, 3], wq),
      floatTensor("ws", [4], ws),
      int32Tensor("bq", [4], bq),
      floatTensor("bs", [4], ws.map((s) => s * xs)),
      ...inits,
    ],
    ...IO,
  }, "webgpu_test");
}

/** QOperator: x -> QuantizeLinear -> QLinearConv -> DequantizeLinear -> tail. */
function qoperatorModel(): Uint8Array {
  const { wq, ws, bq, xs } = quantizedConv();
  const { nodes, inits } = tail("c1");
  return encodeModel({
    name: "qoperator",
    node: [
      node("QuantizeLinear", ["pixels", "xs", "xz"], ["xq"]),
      node("QLinearConv", ["xq", "xs", "xz", "wq", "ws", "wz", "ys", "yz", "bq"], ["yq"], {
        kernel_shape: [3, 3],
      }),
      node("DequantizeLinear", ["yq", "ys", "yz"], ["c1"]),
      ...nodes,
    ],
    initializer: [
      floatTensor("xs", [], new Float32Array([xs])),
      uint8Scalar("xz", 128),
      int8Tensor("wq", [4, 3, 3, 3], wq),
      floatTensor("ws", [4], ws),
      int8Zeros("wz", 4),
      floatTensor("ys", [], new Float32Array([0.1])),
      uint8Scalar("yz", 128),
      int32Tensor("bq", [4], bq),
      ...inits,
    ],
    ...IO,
  }, "webgpu_test");
}

async function runWasm(bytes: Uint8Array, x: Float32Array): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  const out = await session.run({ pixels: new ort.Tensor("float32", x, [2, 3, 48, 64]) });
  await session.release();
  return out.logits.data as Float32Array;
}

Deno.test({
  name: "dequantizeForGpu turns QDQ and QOperator models into the float model of their weights",
  ...t,
  async fn() {
    const x = tinyInput(2);
    const expected = await runWasm(referenceModel(), x);
    for (const [label, bytes] of [["QDQ", qdqModel()], ["QOperator", qoperatorModel()]] as const) {
      const { bytes: float, nodes } = dequantizeForGpu(bytes);
      assert.ok(nodes > 0, label);
      const ops = onnx.ModelProto.decode(float).graph!.node!.map((n) => n.opType);
      assert.deepEqual(ops, ["Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm"], label);
      const diff = maxAbsDiff(await runWasm(float, x), expected);
      assert.ok(diff <= 1e-5, `${label}: max |diff| ${diff}`);
      // The quantized model itself differs by the activation rounding the GPU path drops.
      const quantized = await runWasm(bytes, x);
      assert.ok(maxAbsDiff(quantized, expected) > 0, `${label}: the rewrite changed nothing`);
    }
    // A float model is passed through untouched, without a re-encode.
    const tiny = buildTinyModel(64, 48);
    assert.equal(dequantizeForGpu(tiny).bytes, tiny);
  },
});

/** v [2, 8] -> QuantizeLinear -> QGemm (com.microsoft, transB, per-row int8 B, int32 C) -> DQ -> y [2, 4]. */
function qgemmModels(): { quantized: Uint8Array; reference: Uint8Array } {
  const random = mulberry32(5);
  const bq = Int8Array.from({ length: 4 * 8 }, () => Math.round(random() * 254 - 127));
  const bs = new Float32Array([0.01, 0.02, 0.015, 0.005]);
  const cq = new Int32Array([300, -100, 0, 42]);
  const vs = 0.04;
  const io = { input: [floatValueInfo("v", [2, 8])], output: [floatValueInfo("y", [2, 4])] };
  const graph = {
    name: "qgemm",
    node: [
      node("QuantizeLinear", ["v", "vs", "vz"], ["vq"]),
      {
        ...node("QGemm", ["vq", "vs", "vz", "bq", "bs", "bz", "cq", "ys", "yz"], ["yq"], {
          transB: 1,
        }),
        domain: "com.microsoft",
      },
      node("DequantizeLinear", ["yq", "ys", "yz"], ["y"]),
    ],
    initializer: [
      floatTensor("vs", [], new Float32Array([vs])),
      uint8Scalar("vz", 128),
      int8Tensor("bq", [4, 8], bq),
      floatTensor("bs", [4], bs),
      int8Zeros("bz", 4),
      int32Tensor("cq", [4], cq),
      floatTensor("ys", [], new Float32Array([0.05])),
      uint8Scalar("yz", 128),
    ],
    ...io,
  };
  const quantized = onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 8,
    producerName: "webgpu_test",
    opsetImport: [{ domain: "", version: 13 }, { domain: "com.microsoft", version: 1 }],
    graph,
  })).finish();
  const reference = encodeModel({
    name: "gemm",
    node: [node("Gemm", ["v", "b", "c"], ["y"], { transB: 1 })],
    initializer: [
      floatTensor("b", [4, 8], dequantizeValues(bq, [4, 8], bs, undefined, 0)),
      floatTensor("c", [4], Float32Array.from(cq, (v, i) => v * vs * bs[i])),
    ],
    ...io,
  }, "webgpu_test");
  return { quantized, reference };
}

Deno.test({
  name: "dequantizeForGpu turns com.microsoft QGemm into Gemm on the dequantized weights",
  ...t,
  async fn() {
    const random = mulberry32(9);
    const v = Float32Array.from({ length: 16 }, () => random() * 4 - 2);
    const run = async (bytes: Uint8Array) => {
      const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
      const out = await session.run({ v: new ort.Tensor("float32", v, [2, 8]) });
      await session.release();
      return out.y.data as Float32Array;
    };
    const { quantized, reference } = qgemmModels();
    const { bytes } = dequantizeForGpu(quantized);
    const ops = onnx.ModelProto.decode(bytes).graph!.node!.map((n) => `${n.domain}:${n.opType}`);
    // The graph output was the DequantizeLinear's: an Identity gives the name back.
    assert.deepEqual(ops, [":Gemm", ":Identity"]);
    const expected = await run(reference);
    const diff = maxAbsDiff(await run(bytes), expected);
    assert.ok(diff <= 1e-5, `max |diff| ${diff}`);
    assert.ok(maxAbsDiff(await run(quantized), expected) > 0, "the rewrite changed nothing");
  },
});

Deno.test("dequantizeForGpu refuses quantized operators it cannot rewrite", () => {
  const bytes = encodeModel({
    name: "integer",
    node: [node("ConvInteger", ["xq", "wq"], ["y"])],
    input: [floatValueInfo("xq", [1, 3, 4, 4])],
    output: [floatValueInfo("y", [1, 1, 2, 2])],
  }, "webgpu_test");
  assert.throws(
    () => dequantizeForGpu(bytes),
    /Cannot run the model on the GPU: its ConvInteger node/,
  );
});

// --- On a WebGPU adapter (Mesa's lavapipe in CI) -------------------------------------------------

Deno.test({
  name: "webgpu runs the tiny model like wasm, and auto takes a hardware adapter",
  ignore: noAdapter !== undefined,
  ...t,
  async fn() {
    const bytes = buildTinyModel(64, 48);
    const x = tinyInput(2);
    const wasm = await createWasmBackend(bytes, TINY_IO);
    const expected = await wasm.run(x, [2, 3, 48, 64]);
    await wasm.release();
    // The real adapter, reported as hardware: auto must choose webgpu.
    const { entry } = watchedGpu({ hardware: true });
    const lines: string[] = [];
    const gpuBackend = await createBackend(bytes, {
      ...TINY_IO,
      backend: "auto",
      gpu: entry,
      log: (l) => lines.push(l),
    });
    assert.equal(gpuBackend.name, "webgpu", lines.join("\n"));
    const out = await gpuBackend.run(x, [2, 3, 48, 64]);
    assert.deepEqual(out.dims, [2, 4]);
    assert.ok(maxAbsDiff(out.data, expected.data) <= 1e-4);
    await gpuBackend.release();
  },
});

let alexnet:
  | Promise<
    { gpu: Backend; devices: GPUDevice[]; log: string[]; x: Float32Array; want: Float32Array }
  >
  | undefined;

/** The synthetic AlexNet on webgpu, and its wasm probabilities for chelsea.jpg (batch 1). */
function alexnetOnGpu() {
  alexnet ??= (async () => {
    const model = await loadModel(await ensureSyntheticModel(1));
    const io = { inputName: model.manifest.input.name, outputName: model.manifest.output.name };
    const x = preprocess(
      await decodeImage(await fixture("chelsea.jpg")),
      model.manifest.preprocessing,
    );
    const wasm = await createWasmBackend(model.bytes, io);
    const want = (await wasm.run(x, [1, 3, 224, 224])).data;
    await wasm.release();
    const { entry, devices } = watchedGpu();
    const log: string[] = [];
    const gpu = await createWebGpuBackend(model.bytes, {
      ...io,
      gpu: entry,
      allowFallbackAdapter: true,
      log: (l) => log.push(l),
    });
    return { gpu, devices, log, x, want };
  })();
  return alexnet;
}

Deno.test({
  name: "the synthetic AlexNet gives the same top-5 on webgpu as on wasm, max |diff| <= 1e-4",
  ignore: noAdapter !== undefined,
  ...t,
  async fn() {
    const { gpu, x, want, log } = await alexnetOnGpu();
    assert.equal(gpu.name, "webgpu");
    assert.equal(gpu.kernels.lrn, "custom");
    const got = await gpu.run(x, [1, 3, 224, 224]);
    assert.deepEqual(got.dims, [1, 1000]);
    const diff = maxAbsDiff(got.data, want);
    console.log(`webgpu vs wasm: max |diff| ${diff.toExponential(2)}; ${log.join("; ")}`);
    assert.deepEqual(top5(got.data), top5(want));
    assert.ok(diff <= 1e-4, `max |diff| ${diff}`);
  },
});

Deno.test({
  name: "a device lost during a run hands over to wasm, and that run still answers",
  ignore: noAdapter !== undefined,
  ...t,
  async fn() {
    const { gpu, devices, x, want, log } = await alexnetOnGpu();
    const hook = loseOnFirstSubmit(devices[0]);
    const answered = await gpu.run(x, [1, 3, 224, 224]);
    assert.equal(hook.submits, 1, "the run submitted GPU work and lost its device right after");
    // The GPU run was cut short, so the answer is the wasm rerun's: bit for bit wasm's.
    assert.deepEqual(answered.data, want);
    // From now on wasm serves, with the wasm backend's own results.
    const next = await gpu.run(x, [1, 3, 224, 224]);
    assert.deepEqual(next.data, want);
    assert.equal(gpu.name, "wasm");
    assert.ok(log.some((l) => /device lost \(destroyed/.test(l)), log.join("\n"));
    await gpu.release();
  },
});

Deno.test({
  name: "after a device loss /predict keeps answering and /v1/models says wasm serves",
  ignore: noAdapter !== undefined,
  ...t,
  async fn() {
    const paths = await writeTinyModel(64, 48);
    const model = await loadModel(pathToFileURL(paths.manifest), pathToFileURL(paths.model));
    const { entry, devices } = watchedGpu();
    // Through createBackend, as the server does: webgpu by name takes the software adapter.
    const backend = await createBackend(model.bytes, { ...TINY_IO, backend: "webgpu", gpu: entry });
    const app = createApp({ classifier: new Classifier(model, backend) });
    const image = await fixture("chelsea.jpg");
    const predict = async () => {
      const res = await app.request("/predict", {
        method: "POST",
        body: image,
        headers: { "content-type": "image/jpeg" },
      });
      assert.equal(res.status, 200);
      return await res.json();
    };
    const models = async () => (await (await app.request("/v1/models")).json()).models[0];
    const before = await predict();
    assert.equal(before.backend, "webgpu");
    assert.equal((await models()).backend.name, "webgpu");
    devices[0].destroy();
    const after = await predict();
    assert.equal(after.backend, "wasm");
    assert.deepEqual(
      after.predictions.map((p: { index: number }) => p.index),
      before.predictions.map((p: { index: number }) => p.index),
    );
    assert.equal((await models()).backend.name, "wasm");
    await backend.release();
    await Deno.remove(paths.dir, { recursive: true });
  },
});
