import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import {
  ALEXNET_INPUT,
  ALEXNET_OUTPUT,
  ALEXNET_PARAMETERS,
  alexnetShapes,
  buildAlexNet,
} from "../../src/model/alexnet.ts";
import { decodeModel } from "../../src/graph/onnx.ts";
import { countParameters } from "../../src/model/store.ts";
import { decodeImage, preprocess } from "../../src/image/mod.ts";
import { TORCHVISION_PREPROCESSING } from "../../src/model/manifest.ts";
import { fixture } from "../_helpers.ts";

// The paper's network at 224 input with Caffe's ceil-mode pooling.
const EXPECTED: [string, number[], number][] = [
  ["conv1", [96, 54, 54], 96 * 3 * 11 * 11 + 96],
  ["norm1", [96, 54, 54], 0],
  ["pool1", [96, 27, 27], 0],
  ["conv2", [256, 27, 27], 256 * 48 * 5 * 5 + 256],
  ["norm2", [256, 27, 27], 0],
  ["pool2", [256, 13, 13], 0],
  ["conv3", [384, 13, 13], 384 * 256 * 3 * 3 + 384],
  ["conv4", [384, 13, 13], 384 * 192 * 3 * 3 + 384],
  ["conv5", [256, 13, 13], 256 * 192 * 3 * 3 + 256],
  ["pool5", [256, 6, 6], 0],
  ["fc6", [4096], 9216 * 4096 + 4096],
  ["fc7", [4096], 4096 * 4096 + 4096],
  ["fc8", [1000], 4096 * 1000 + 1000],
  ["prob", [1000], 0],
];

Deno.test("alexnet shapes follow the paper with ceil-mode pooling", () => {
  const shapes = alexnetShapes(224);
  assert.deepEqual(shapes.map((s) => [s.name, s.shape, s.parameters]), EXPECTED);
  // Caffe's 227 input gives 55x55 after conv1 and the same 6x6x256 before fc6.
  const at227 = alexnetShapes(227);
  assert.deepEqual(at227[0].shape, [96, 55, 55]);
  assert.deepEqual(at227[9].shape, [256, 6, 6]);
});

Deno.test("alexnet has exactly 60,965,224 parameters, counted from the graph", async () => {
  assert.equal(alexnetShapes().reduce((a, s) => a + s.parameters, 0), ALEXNET_PARAMETERS);
  assert.equal(await countParameters(buildAlexNet({ seed: 3 })), 60_965_224);
});

Deno.test("alexnet graph has the zoo interface and the paper's operators", () => {
  const model = decodeModel(buildAlexNet({ seed: 1 }));
  const graph = model.graph!;
  assert.deepEqual(graph.input!.map((i) => i.name), [ALEXNET_INPUT]);
  assert.deepEqual(graph.output!.map((o) => o.name), [ALEXNET_OUTPUT]);
  const ops = graph.node!.map((n) => n.opType);
  assert.equal(ops.filter((o) => o === "Conv").length, 5);
  assert.equal(ops.filter((o) => o === "Gemm").length, 3);
  assert.equal(ops.filter((o) => o === "LRN").length, 2);
  assert.equal(ops.filter((o) => o === "MaxPool").length, 3);
  assert.equal(ops.filter((o) => o === "Relu").length, 7);
  assert.ok(!ops.includes("Dropout"));
  const groups = graph.node!.filter((n) => n.opType === "Conv").map((n) =>
    Number(n.attribute!.find((a) => a.name === "group")!.i)
  );
  assert.deepEqual(groups, [1, 2, 1, 2, 2]);
});

Deno.test("the same seed gives the same weights, another seed other weights", () => {
  const a = buildAlexNet({ seed: 5 });
  const b = buildAlexNet({ seed: 5 });
  const c = buildAlexNet({ seed: 6 });
  assert.equal(a.length, b.length);
  const sample = (x: Uint8Array) => x.subarray(1_000_000, 1_000_064).join(",");
  assert.equal(sample(a), sample(b));
  assert.notEqual(sample(a), sample(c));
});

Deno.test({
  name:
    "onnxruntime runs every layer at its computed shape; activations keep a sane spread on real photos",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const session = await ort.InferenceSession.create(
      buildAlexNet({ seed: 1, intermediateOutputs: true }),
      { executionProviders: ["wasm"] },
    );
    const photos = ["chelsea.jpg", "coffee.png", "rocket.jpg", "astronaut_progressive.jpg"];
    const batch = new Float32Array(photos.length * 3 * 224 * 224);
    for (const [i, name] of photos.entries()) {
      preprocess(
        await decodeImage(await fixture(name)),
        TORCHVISION_PREPROCESSING,
        batch,
        i * 3 * 224 * 224,
      );
    }
    const out = await session.run({
      [ALEXNET_INPUT]: new ort.Tensor("float32", batch, [photos.length, 3, 224, 224]),
    });
    const lines: string[] = [];
    for (const layer of alexnetShapes()) {
      const t = out[layer.tensor];
      assert.deepEqual(t.dims, [photos.length, ...layer.shape], layer.name);
      const data = t.data as Float32Array;
      let sq = 0;
      for (const v of data) sq += v * v;
      const rms = Math.sqrt(sq / data.length);
      lines.push(`${layer.name.padEnd(6)} rms ${rms.toExponential(2)}`);
      if (layer.kind !== "softmax") {
        // He-scaled weights: neither vanishing (< 0.1) nor exploding (> 100) through 8 layers.
        assert.ok(rms > 0.1 && rms < 100, `${layer.name} activation rms ${rms} out of [0.1, 100]`);
      }
    }
    console.log(lines.join("\n"));
    const probs = out[ALEXNET_OUTPUT].data as Float32Array;
    for (let n = 0; n < photos.length; n++) {
      const row = probs.subarray(n * 1000, (n + 1) * 1000);
      const sum = row.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-4, `probabilities sum to ${sum}`);
      assert.ok(row.every((p) => p >= 0 && p <= 1));
    }
    await session.release();
  },
});
