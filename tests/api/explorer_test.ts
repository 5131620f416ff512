// First: it counts the Workers the explorer engine starts, which keeps globalThis.Worker on load.
import { workers } from "./_worker_spy.ts";
import assert from "node:assert/strict";
import { Hono } from "hono";
import * as ort from "onnxruntime-web";
import type onnxProto from "onnx-proto";
import { createApp, type ServerState } from "../../src/api/mod.ts";
import { browserRoutes } from "../../src/api/browser.ts";
import { explorerRoutes } from "../../src/api/explorer.ts";
import { ExplorerEngine } from "../../src/classify/explorer_engine.ts";
import { prefixModel, summarizeGraph } from "../../src/graph/summary.ts";
import { drawFeatureMaps, drawFilters } from "../../src/api/_grid.ts";
import { findModelFiles, type ModelFiles } from "../../src/api/_model_files.ts";
import { encodePng } from "../../src/api/_png.ts";
import { loadClassifier } from "../../src/classify/load.ts";
import { decodeImage } from "../../src/image/mod.ts";
import {
  decodeModel,
  encodeModel,
  floatTensor,
  floatValueInfo,
  int64Tensor,
  node,
  onnx,
} from "../../src/graph/onnx.ts";
import { ALEXNET_PARAMETERS, alexnetShapes, buildAlexNet } from "../../src/model/alexnet.ts";
import { quantizeModel } from "../../src/graph/quantize.ts";
import { mulberry32 } from "../../src/graph/weights.ts";
import { wasmEvaluator } from "../../src/runtime/evaluate.ts";
import { buildTinyModel, fixture, syntheticClassifier, writeTinyModel } from "../_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };

/** Width and height from a PNG's IHDR chunk, after checking the signature. */
function pngSize(bytes: Uint8Array): { width: number; height: number } {
  assert.deepEqual([...bytes.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], "PNG signature");
  assert.equal(new TextDecoder().decode(bytes.subarray(12, 16)), "IHDR");
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

async function syntheticApp() {
  const state: ServerState = { classifier: await syntheticClassifier() };
  return createApp(state);
}

const post = (body: BodyInit, type = "image/jpeg"): RequestInit => ({
  method: "POST",
  body,
  headers: { "content-type": type },
});

// ---------------------------------------------------------------- layer table

Deno.test({
  name: "layers are computed from the loaded graph and match the paper's table",
  ...t,
  async fn() {
    const app = await syntheticApp();
    const res = await app.request("/v1/explorer/layers");
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.model, "alexnet-synthetic");
    assert.equal(body.weights, "synthetic");
    assert.deepEqual(body.input, { name: "data_0", shape: [3, 224, 224] });
    const expected = alexnetShapes();
    assert.deepEqual(
      body.layers.map((l: Record<string, unknown>) => ({
        name: l.name,
        kind: l.kind,
        shape: l.shape,
        parameters: l.parameters,
        macs: l.macs,
        tensor: l.tensor,
      })),
      expected.map(({ name, kind, shape, parameters, macs, tensor }) => ({
        name,
        kind,
        shape,
        parameters,
        macs,
        tensor,
      })),
    );
    assert.equal(body.parameters, ALEXNET_PARAMETERS);
    assert.equal(body.parameters, 60_965_224);
    assert.equal(body.macs, expected.reduce((a, l) => a + l.macs, 0));
    const conv1 = body.layers[0];
    assert.deepEqual(conv1.ops, ["Conv", "Relu"]);
    assert.deepEqual(conv1.attrs, { out: 96, kernel: 11, stride: 4, pad: 0, groups: 1 });
    assert.deepEqual(body.layers[2].attrs, { kernel: 3, stride: 2 });
    assert.deepEqual(
      body.layers.filter((l: { maps: boolean }) => l.maps).map((l: { name: string }) => l.name),
      ["conv1", "norm1", "pool1", "conv2", "norm2", "pool2", "conv3", "conv4", "conv5", "pool5"],
    );
  },
});

Deno.test("summarizeGraph reads a 227 input without a table: conv1 is 55x55 there", () => {
  const { layers, parameters } = summarizeGraph(decodeModel(buildAlexNet({ inputSize: 227 })));
  assert.deepEqual(layers[0].shape, [96, 55, 55]);
  assert.deepEqual(layers.find((l) => l.name === "pool5")?.shape, [256, 6, 6]);
  assert.deepEqual(
    layers.map((l) => l.shape),
    alexnetShapes(227).map((l) => l.shape),
  );
  assert.equal(parameters, ALEXNET_PARAMETERS);
});

/**
 * A zoo-shaped float graph: x: [1, 3, 32, 32] -> Conv 8@5x5 pad 2 -> Relu -> LRN ->
 * MaxPool 3/2 (pads 0,0,1,1) -> Reshape [1, -1] -> Gemm 10 -> Relu -> Dropout -> Gemm 5 -> Softmax.
 */
function zooShapedModel(): Uint8Array {
  const random = mulberry32(11);
  const values = (n: number) => Float32Array.from({ length: n }, () => random() - 0.5);
  return encodeModel({
    name: "zoo-shaped",
    node: [
      node("Conv", ["data_0", "conv1_w_0", "conv1_b_0"], ["conv1_1"], {
        kernel_shape: [5, 5],
        pads: [2, 2, 2, 2],
      }),
      node("Relu", ["conv1_1"], ["conv1_2"]),
      node("LRN", ["conv1_2"], ["norm1_1"], { size: 5 }),
      node("MaxPool", ["norm1_1"], ["pool1_1"], {
        kernel_shape: [3, 3],
        strides: [2, 2],
        pads: [0, 0, 1, 1],
      }),
      node("Reshape", ["pool1_1", "OC2_DUMMY_1"], ["OC2_DUMMY_0"]),
      node("Gemm", ["OC2_DUMMY_0", "fc6_w_0", "fc6_b_0"], ["fc6_1"], { transB: 1 }),
      node("Relu", ["fc6_1"], ["fc6_2"]),
      node("Dropout", ["fc6_2"], ["fc6_3"]),
      node("Gemm", ["fc6_3", "fc7_w_0", "fc7_b_0"], ["fc7_1"], { transB: 1 }),
      node("Softmax", ["fc7_1"], ["prob_1"], { axis: 1 }),
    ],
    initializer: [
      floatTensor("conv1_w_0", [8, 3, 5, 5], values(8 * 75)),
      floatTensor("conv1_b_0", [8], values(8)),
      int64Tensor("OC2_DUMMY_1", [1, -1]),
      floatTensor("fc6_w_0", [10, 8 * 16 * 16], values(10 * 2048)),
      floatTensor("fc6_b_0", [10], values(10)),
      floatTensor("fc7_w_0", [5, 10], values(50)),
      floatTensor("fc7_b_0", [5], values(5)),
    ],
    input: [floatValueInfo("data_0", [1, 3, 32, 32])],
    output: [floatValueInfo("prob_1", [1, 5])],
  }, "explorer tests");
}

Deno.test("a zoo-shaped graph (Reshape, Dropout, padded pool) reads as its layers", () => {
  const s = summarizeGraph(decodeModel(zooShapedModel()));
  assert.deepEqual(
    s.layers.map((l) => [l.name, l.kind, l.ops.join("+"), l.shape, l.parameters, l.macs, l.tensor]),
    [
      ["conv1", "conv", "Conv+Relu", [8, 32, 32], 8 * 75 + 8, 8 * 75 * 32 * 32, "conv1_2"],
      ["norm1", "lrn", "LRN", [8, 32, 32], 0, 0, "norm1_1"],
      ["pool1", "pool", "MaxPool", [8, 16, 16], 0, 0, "pool1_1"],
      ["fc2", "fc", "Gemm+Relu+Dropout", [10], 2048 * 10 + 10, 2048 * 10, "fc6_2"],
      ["fc3", "fc", "Gemm", [5], 55, 50, "fc7_1"],
      ["prob", "softmax", "Softmax", [5], 0, 0, "prob_1"],
    ],
  );
  assert.equal(s.dropout, 1);
  assert.equal(s.parameters, 8 * 75 + 8 + 20490 + 55);
  assert.deepEqual(s.firstConv?.dims, [8, 3, 5, 5]);
});

Deno.test({
  name: "the prefix model gives the same feature maps as the whole graph, with only its weights",
  ...t,
  async fn() {
    const bytes = zooShapedModel();
    const model = decodeModel(bytes);
    const tensors = ["conv1_2", "norm1_1", "pool1_1"];
    const prefix = prefixModel(model, tensors.map((name) => ({ name, dtype: "float32" })));
    const sub = decodeModel(prefix).graph!;
    assert.deepEqual(sub.node!.map((n) => n.opType), ["Conv", "Relu", "LRN", "MaxPool"]);
    assert.deepEqual(sub.initializer!.map((i) => i.name), ["conv1_w_0", "conv1_b_0"]);
    // The whole graph with the same tensors exposed, as the reference.
    model.graph!.output!.push(...tensors.map((n) =>
      onnx.ValueInfoProto.create({
        name: n,
        type: { tensorType: { elemType: 1 } },
      })
    ));
    const whole = onnx.ModelProto.encode(model).finish();
    const random = mulberry32(5);
    const x = Float32Array.from({ length: 3 * 32 * 32 }, () => random() * 2 - 1);
    const run = async (b: Uint8Array) => {
      const s = await ort.InferenceSession.create(b, { executionProviders: ["wasm"] });
      const out = await s.run({ data_0: new ort.Tensor("float32", x, [1, 3, 32, 32]) }, tensors);
      await s.release();
      return out;
    };
    const [a, b] = [await run(prefix), await run(whole)];
    for (const name of tensors) assert.deepEqual(a[name].data, b[name].data, name);
    assert.deepEqual(a.pool1_1.dims, [1, 8, 16, 16]);
  },
});

/** A raw int8/uint8/int32 initializer. */
function intTensor(
  name: string,
  dataType: number,
  dims: number[],
  values: number[],
): onnxProto.onnx.ITensorProto {
  const Array_ = dataType === 2 ? Uint8Array : dataType === 3 ? Int8Array : Int32Array;
  const data = Array_.from(values);
  return { name, dims, dataType, rawData: new Uint8Array(data.buffer) };
}

/**
 * A QOperator graph like the zoo's int8 file: x: [1, 3, 8, 8] -> QuantizeLinear ->
 * QLinearConv 4@3x3 (uint8 out) -> MaxPool 2/2 -> DequantizeLinear -> Flatten -> Gemm 2.
 */
function qOperatorModel(): Uint8Array {
  const random = mulberry32(2);
  const w = Array.from({ length: 4 * 27 }, () => Math.round(random() * 254 - 127));
  const scalar = (name: string, v: number) => floatTensor(name, [], new Float32Array([v]));
  return encodeModel({
    name: "qoperator",
    node: [
      node("QuantizeLinear", ["data_0", "x_scale", "x_zp"], ["data_q"]),
      node(
        "QLinearConv",
        [
          "data_q",
          "x_scale",
          "x_zp",
          "w",
          "w_scale",
          "w_zp",
          "y_scale",
          "y_zp",
          "b",
        ],
        ["conv1_q"],
        { kernel_shape: [3, 3] },
      ),
      node("MaxPool", ["conv1_q"], ["pool1_q"], { kernel_shape: [2, 2], strides: [2, 2] }),
      node("DequantizeLinear", ["pool1_q", "y_scale", "y_zp"], ["pool1"]),
      node("Flatten", ["pool1"], ["flat"], { axis: 1 }),
      node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], { transB: 1 }),
    ],
    initializer: [
      scalar("x_scale", 0.02),
      intTensor("x_zp", 2, [], [128]),
      intTensor("w", 3, [4, 3, 3, 3], w),
      scalar("w_scale", 0.01),
      intTensor("w_zp", 3, [], [0]),
      scalar("y_scale", 0.05),
      intTensor("y_zp", 2, [], [0]),
      intTensor("b", 6, [4], [10, -10, 0, 5]),
      floatTensor("fc_w", [2, 36], Float32Array.from({ length: 72 }, () => random() - 0.5)),
      floatTensor("fc_b", [2], new Float32Array(2)),
    ],
    input: [floatValueInfo("data_0", [1, 3, 8, 8])],
    output: [floatValueInfo("logits", [1, 2])],
  }, "explorer tests");
}

Deno.test({
  name: "a QOperator int8 graph reads as its layers, and its uint8 maps run in a prefix",
  ...t,
  async fn() {
    const model = decodeModel(qOperatorModel());
    const s = summarizeGraph(model);
    assert.deepEqual(
      s.layers.map((l) => [l.name, l.ops.join("+"), l.shape, l.parameters, l.dtype]),
      [
        ["conv1", "QLinearConv", [4, 6, 6], 4 * 27 + 4, "uint8"],
        ["pool1", "MaxPool", [4, 3, 3], 0, "uint8"],
        ["fc2", "Gemm", [2], 74, "float32"],
      ],
    );
    assert.equal(s.layers[0].macs, 4 * 27 * 36);
    // int8 weights come out as stored (the drawing normalizes each filter anyway).
    assert.equal(s.firstConv!.values.length, 108);
    assert.ok(s.firstConv!.values.every((v) => Number.isInteger(v) && v >= -127 && v <= 127));
    const prefix = prefixModel(model, [{ name: "pool1_q", dtype: "uint8" }]);
    const session = await ort.InferenceSession.create(prefix, { executionProviders: ["wasm"] });
    const x = new ort.Tensor("float32", new Float32Array(3 * 64).fill(0.5), [1, 3, 8, 8]);
    const out = await session.run({ data_0: x }, ["pool1_q"]);
    assert.equal(out.pool1_q.type, "uint8");
    assert.deepEqual(out.pool1_q.dims, [1, 4, 3, 3]);
    await session.release();
  },
});

Deno.test({
  name: "a QDQ model made by our quantizer reads as the same layers as its float source",
  ...t,
  async fn() {
    const fp32 = buildTinyModel(32, 24);
    const random = mulberry32(3);
    const inputs = [Float32Array.from({ length: 3 * 24 * 32 }, () => random() * 2 - 1)];
    const { bytes } = await quantizeModel(fp32, inputs, wasmEvaluator("pixels", [1, 3, 24, 32]));
    const strip = (s: ReturnType<typeof summarizeGraph>) =>
      s.layers.map(({ name, kind, shape, parameters, macs, tensor }) => ({
        name,
        kind,
        shape,
        parameters,
        macs,
        tensor,
      }));
    const a = summarizeGraph(decodeModel(fp32));
    const b = summarizeGraph(decodeModel(bytes));
    assert.deepEqual(strip(b), strip(a));
    assert.deepEqual(a.layers.map((l) => l.name), ["conv1", "pool1", "fc2"]);
    assert.deepEqual(a.layers[0].shape, [4, 11, 15]);
    assert.deepEqual(a.layers[1].shape, [4, 1, 1]);
  },
});

// ---------------------------------------------------------------- pictures

Deno.test({
  name: "filters.png draws the 96 conv1 filters as a 12x8 grid of 11x11 tiles",
  ...t,
  async fn() {
    const app = await syntheticApp();
    const res = await app.request("/v1/explorer/filters.png");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "image/png");
    assert.equal(res.headers.get("x-filters-shape"), "96,3,11,11");
    const png = new Uint8Array(await res.arrayBuffer());
    // 12 columns of 44-px tiles (scale 4) with 2-px gaps, 8 rows.
    assert.deepEqual(pngSize(png), { width: 12 * 46 + 2, height: 8 * 46 + 2 });
    const image = await decodeImage(png);
    assert.equal(image.width, 554);
    const small = await app.request("/v1/explorer/filters.png?scale=1");
    assert.deepEqual(pngSize(new Uint8Array(await small.arrayBuffer())), {
      width: 12 * 13 + 2,
      height: 8 * 13 + 2,
    });
    const bad = await app.request("/v1/explorer/filters.png?scale=9");
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.code, "bad_request");
  },
});

Deno.test("drawFilters normalizes each filter to 0..255 and swaps BGR weights to RGB", () => {
  // Two 1x1 filters over 3 channels: w: [2, 3, 1, 1].
  const w = new Float32Array([0, 1, 2, -5, -5, 5]);
  const rgb = drawFilters(w, [2, 3, 1, 1], { scale: 1 });
  const px = (g: typeof rgb, tile: number) => {
    const cols = Math.ceil(Math.sqrt(2 * 1.5));
    const x = 2 + (tile % cols) * 3, y = 2 + Math.floor(tile / cols) * 3;
    return [...g.data.subarray((y * g.width + x) * 3, (y * g.width + x) * 3 + 3)];
  };
  assert.deepEqual(px(rgb, 0), [0, 128, 255]);
  assert.deepEqual(px(rgb, 1), [0, 0, 255]);
  assert.deepEqual(px(drawFilters(w, [2, 3, 1, 1], { scale: 1, bgr: true }), 0), [255, 128, 0]);
});

Deno.test("drawFeatureMaps lays out the first maps, each with its own range", () => {
  // x: [3, 2, 2]; map 1 is constant (drawn at the bottom of the colour map).
  const x = new Float32Array([0, 1, 2, 3, 7, 7, 7, 7, -1, 0, 0, 1]);
  const grid = drawFeatureMaps(x, [3, 2, 2], 2);
  assert.equal(grid.shown, 2);
  assert.equal(grid.cols, 2);
  assert.equal(grid.scale, 28); // 2-px maps are enlarged to about 56 px
  assert.equal(grid.width, 2 * (56 + 2) + 2);
  const at = (
    x: number,
    y: number,
  ) => [...grid.data.subarray((y * grid.width + x) * 3, (y * grid.width + x) * 3 + 3)];
  const low = at(2, 2), high = at(2 + 28, 2 + 28);
  assert.deepEqual(low, [0, 0, 4]); // the minimum is the map's darkest colour
  assert.deepEqual(high, [252, 253, 191]); // the maximum its lightest
  assert.deepEqual(at(60 + 5, 5), low, "a constant map is drawn dark");
  const png = encodePng(grid);
  assert.deepEqual(pngSize(png), { width: grid.width, height: grid.height });
});

Deno.test({
  name: "features returns the first 64 maps of a layer as a PNG grid, from every body form",
  ...t,
  async fn() {
    const app = await syntheticApp();
    const bytes = await fixture("chelsea.jpg");
    const res = await app.request("/v1/explorer/features?layer=conv1", post(bytes));
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get("x-layer"), "conv1");
    assert.equal(res.headers.get("x-layer-shape"), "96,54,54");
    assert.equal(res.headers.get("x-maps-shown"), "64");
    assert.equal(res.headers.get("x-grid"), "8x8");
    assert.match(res.headers.get("server-timing")!, /inference;dur=[\d.]+/);
    const png = new Uint8Array(await res.arrayBuffer());
    assert.deepEqual(pngSize(png), { width: 8 * 56 + 2, height: 8 * 56 + 2 });

    // pool5's 6x6 maps are enlarged 9 times; multipart and JSON bodies work too.
    const form = new FormData();
    form.append("image", new Blob([bytes]), "chelsea.jpg");
    const pool5 = await app.request("/v1/explorer/features?layer=pool5", {
      method: "POST",
      body: form,
    });
    assert.equal(pool5.headers.get("x-layer-shape"), "256,6,6");
    assert.deepEqual(pngSize(new Uint8Array(await pool5.arrayBuffer())), {
      width: 8 * 56 + 2,
      height: 8 * 56 + 2,
    });
    const json = await app.request(
      "/v1/explorer/features?layer=norm2",
      post(JSON.stringify({ image: btoa(String.fromCharCode(...bytes)) }), "application/json"),
    );
    assert.equal(json.headers.get("x-layer-shape"), "256,27,27");
    // Without ?layer, the first layer with maps.
    const first = await app.request("/v1/explorer/features", post(bytes));
    assert.equal(first.headers.get("x-layer"), "conv1");
    await first.body?.cancel();
  },
});

Deno.test({
  name: "features refuses layers without maps, unknown layers and bytes that are not an image",
  ...t,
  async fn() {
    const app = await syntheticApp();
    const bytes = await fixture("chelsea.jpg");
    for (const layer of ["fc6", "prob", "nope"]) {
      const res = await app.request(`/v1/explorer/features?layer=${layer}`, post(bytes));
      assert.equal(res.status, 400);
      const { error } = await res.json();
      assert.equal(error.code, "bad_request");
      assert.match(error.message, /^Cannot show feature maps of layer ".*": pick one of conv1, /);
    }
    const text = await app.request(
      "/v1/explorer/features?layer=conv1",
      post("hello", "text/plain"),
    );
    assert.equal(text.status, 415);
    const empty = await app.request("/v1/explorer/features?layer=conv1", post(new Uint8Array()));
    assert.equal(empty.status, 400);
  },
});

Deno.test({
  name: "the worker's feature maps equal the layer's output in the whole model",
  ...t,
  async fn() {
    // The tiny model through the explorer worker, against ORT on the whole graph.
    const bytes = buildTinyModel(32, 24);
    const dir = await Deno.makeTempDir();
    await Deno.writeFile(`${dir}/tiny.onnx`, bytes);
    const engine = new ExplorerEngine(new URL(`file://${dir}/tiny.onnx`), [3, 24, 32]);
    try {
      const summary = await engine.summary;
      assert.deepEqual(summary.layers.map((l) => l.tensor), ["r1", "g1", "logits"]);
      const random = mulberry32(9);
      const x = Float32Array.from({ length: 3 * 24 * 32 }, () => random() * 2 - 1);
      const got = await engine.features(x.slice(), "r1");
      assert.deepEqual(got.dims, [4, 11, 15]);
      const want = await wasmEvaluator("pixels", [1, 3, 24, 32])(
        withOutput(bytes, "r1"),
        x,
        ["r1"],
      );
      assert.deepEqual(got.data, want.r1);
    } finally {
      engine.close();
    }
    await assert.rejects(engine.features(new Float32Array(1), "r1"), /closed/);
  },
});

function withOutput(bytes: Uint8Array, name: string): Uint8Array {
  const model = decodeModel(bytes);
  model.graph!.output!.push(
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: 1 } } }),
  );
  return onnx.ModelProto.encode(model).finish();
}

Deno.test({
  name: "an idle explorer worker ends, and the next request starts a new one",
  ...t,
  async fn() {
    const paths = await writeTinyModel(64, 48);
    const state: ServerState = { classifier: await loadClassifier(paths) };
    const files: ModelFiles = {
      model: new URL(`file://${paths.model}`),
      manifest: new URL(`file://${paths.manifest}`),
      labels: new URL(`file://${paths.dir}/labels.txt`),
    };
    const app = explorerRoutes(state, { locate: () => Promise.resolve(files), idleMs: 1 });
    const explorer = (list: string[]) => list.filter((u) => u.endsWith("/_explorer_worker.ts"));
    const started = explorer(workers.started).length;
    const ended = explorer(workers.terminated).length;
    assert.equal((await app.request("/layers")).status, 200);
    assert.equal(explorer(workers.started).length, started + 1);
    // Nothing else closes it: the worker ends because it is idle (no clock is asserted on).
    for (let i = 0; explorer(workers.terminated).length === ended; i++) {
      assert.ok(i < 6000, "the idle explorer worker never ended");
      await new Promise((r) => setTimeout(r, 5));
    }
    const res = await app.request("/features?layer=conv1", post(await fixture("coffee.png")));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-layer-shape"), "4,23,31");
    await res.body?.cancel();
    assert.equal(explorer(workers.started).length, started + 2, "a new worker answered");
  },
});

// ---------------------------------------------------------------- not ready, not found

Deno.test({
  name: "the explorer answers 503 while the model loads and 404 for a model outside models/",
  ...t,
  async fn() {
    const state: ServerState = {};
    const app = createApp(state);
    for (const path of ["/v1/explorer/layers", "/v1/explorer/filters.png"]) {
      const res = await app.request(path);
      assert.equal(res.status, 503, path);
      assert.equal((await res.json()).error.code, "not_ready");
    }
    state.classifier = await loadClassifier(await writeTinyModel(64, 48));
    const res = await app.request("/v1/explorer/layers");
    assert.equal(res.status, 404);
    const { error } = await res.json();
    assert.equal(error.code, "not_found");
    assert.match(error.message, /^Cannot explore tiny-user-model: its ONNX file is not/);
    assert.equal((await app.request("/v1/models/current.onnx")).status, 404);
  },
});

Deno.test({
  name: "a user model found by the locate option is explored like AlexNet",
  ...t,
  async fn() {
    const paths = await writeTinyModel(64, 48);
    const state: ServerState = { classifier: await loadClassifier(paths) };
    const files: ModelFiles = {
      model: new URL(`file://${paths.model}`),
      manifest: new URL(`file://${paths.manifest}`),
      labels: new URL(`file://${paths.dir}/labels.txt`),
    };
    const app = new Hono()
      .route("/x", explorerRoutes(state, { locate: () => Promise.resolve(files) }))
      .route("/", browserRoutes(state, { locate: () => Promise.resolve(files) }));
    const layers = await (await app.request("/x/layers")).json();
    assert.deepEqual(layers.layers.map((l: { name: string }) => l.name), ["conv1", "pool1", "fc2"]);
    assert.equal(layers.parameters, state.classifier!.info.parameters);
    // 4 filters over 3 channels (BGR model: drawn as RGB).
    const filters = await app.request("/x/filters.png?scale=2");
    assert.equal(filters.status, 200);
    const res = await app.request("/x/features?layer=conv1", post(await fixture("coffee.png")));
    assert.equal(res.headers.get("x-layer-shape"), "4,23,31");
    assert.equal(res.headers.get("x-maps-shown"), "4");
    assert.equal(res.headers.get("x-grid"), "2x2");
    await res.body?.cancel();
    const labels = await (await app.request("/v1/models/current/labels")).json();
    assert.deepEqual(labels.labels, ["red", "green", "blue", "dark"]);
  },
});

// ---------------------------------------------------------------- in-browser mode

Deno.test({
  name: "the loaded model's ONNX file is served with a validator, and its labels as JSON",
  ...t,
  async fn() {
    const app = await syntheticApp();
    const files = await findModelFiles("alexnet-synthetic");
    assert.ok(files);
    const size = (await Deno.stat(files.model)).size;
    const head = await app.request("/v1/models/current.onnx", { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(size));
    assert.equal(head.headers.get("content-type"), "application/octet-stream");
    assert.equal(head.headers.get("x-model-name"), "alexnet-synthetic");
    const etag = head.headers.get("etag")!;
    assert.match(etag, /^W\/"/);
    const again = await app.request("/v1/models/current.onnx", {
      headers: { "if-none-match": etag },
    });
    assert.equal(again.status, 304);
    const full = await app.request("/v1/models/current.onnx");
    const reader = full.body!.getReader();
    const { value } = await reader.read();
    await reader.cancel();
    // The first bytes are the file's first bytes (a protobuf ModelProto).
    const start = (await Deno.readFile(files.model)).subarray(0, value!.length);
    assert.deepEqual(value, start);
    const labels = await (await app.request("/v1/models/current/labels")).json();
    assert.equal(labels.labels.length, 1000);
    assert.equal(labels.labels[281], "tabby, tabby cat");
  },
});

Deno.test("onnxruntime-web's browser files are served, and nothing else from its package", async () => {
  const app = createApp({});
  const mjs = await app.request("/vendor/ort/ort.wasm.min.mjs");
  assert.equal(mjs.status, 200);
  assert.match(mjs.headers.get("content-type")!, /^text\/javascript/);
  assert.match(await mjs.text(), /onnxruntime/i);
  const wasm = await app.request("/vendor/ort/ort-wasm-simd-threaded.wasm", { method: "HEAD" });
  assert.equal(wasm.status, 200);
  assert.equal(wasm.headers.get("content-type"), "application/wasm");
  for (
    const path of [
      "/vendor/ort/ort.wasm.min.mjs.map",
      "/vendor/ort/ort.node.min.js",
      "/vendor/ort/..%2f..%2fpackage.json",
      "/vendor/ort/..%2fpackage.json",
      "/vendor/ort/nope.mjs",
      "/vendor/ort/ort.nope.mjs",
    ]
  ) {
    const res = await app.request(path);
    assert.equal(res.status, 404, path);
    await res.body?.cancel();
  }
});
