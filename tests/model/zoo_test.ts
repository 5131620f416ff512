import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { createApp } from "../../src/api/mod.ts";
import { loadClassifier } from "../../src/classify/load.ts";
import { decodeImage, preprocess, resizeRgba } from "../../src/image/mod.ts";
import { parseManifest } from "../../src/model/manifest.ts";
import type { Backend, BackendOutput } from "../../src/runtime/backend.ts";
import {
  DEFAULT_FETCH,
  findZooEntry,
  namedEntry,
  PREFERENCE,
  resolveModelName,
  ZOO,
  ZOO_PREPROCESSING,
  zooManifest,
  zooManifestText,
} from "../../src/model/zoo.ts";
import { loopFixedBatch } from "../../src/runtime/fixed_batch.ts";
import { buildZooInterfaceModel, type ZooEncoding, zooTestEntry } from "./_zoo_models.ts";
import { writeZooManifest } from "../../src/model/fetch.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const MODELS = new URL("../../models/", import.meta.url);
const fixture = (name: string) => Deno.readFile(new URL(`../fixtures/${name}`, import.meta.url));

Deno.test("the zoo entries carry the pins of the zoo's Git LFS pointers", () => {
  const pins = Object.fromEntries(ZOO.map((e) => [e.name, [e.sha256, e.bytes, e.accuracy]]));
  assert.deepEqual(pins, {
    "bvlcalexnet-12": [
      "6b0da9510f27f234ee96a85dc3809dd210150fdefad87f6850f9788513216945",
      243863787,
      { top1: 54.80, top5: 78.23 },
    ],
    "bvlcalexnet-12-int8": [
      "d53bbedf100be79277cf55d78c72bdcb67d88786988561bf5d530f038e443c7b",
      60984008,
      { top1: 54.68, top5: 78.23 },
    ],
    "bvlcalexnet-12-qdq": [
      "c103c0f7b8f9d8d64b400e0899d5934d2a13d1f08368ba1907285aa0691f4cbb",
      61009072,
      { top1: 54.71, top5: 78.22 },
    ],
    "alexnet-torchvision": [undefined, undefined, { top1: 56.52, top5: 79.07 }],
  });
  assert.equal(DEFAULT_FETCH, "bvlcalexnet-12-int8");
});

Deno.test("start-up prefers int8 over fp32: int8, qdq, torchvision, fp32", () => {
  assert.deepEqual(PREFERENCE, [
    "bvlcalexnet-12-int8",
    "bvlcalexnet-12-qdq",
    "alexnet-torchvision",
    "bvlcalexnet-12",
  ]);
});

Deno.test("the manifests in models/ are the zoo entries' manifests, and valid", async () => {
  for (const entry of ZOO) {
    const url = new URL(`${entry.name}.json`, MODELS);
    const text = await Deno.readTextFile(url);
    assert.equal(text, zooManifestText(entry), `${url.pathname} is out of date`);
    const parsed = parseManifest(JSON.parse(text), url.pathname);
    assert.equal(parsed.model, entry.file);
    assert.equal(parsed.labels, "imagenet_labels.json");
  }
});

Deno.test("the zoo manifests feed data_0 and read softmaxout_1 as probabilities, BGR, mean only", () => {
  for (const name of ["bvlcalexnet-12", "bvlcalexnet-12-int8", "bvlcalexnet-12-qdq"]) {
    const m = zooManifest(findZooEntry(name)!);
    assert.deepEqual(m.input, { name: "data_0" });
    assert.deepEqual(m.output, { name: "softmaxout_1", kind: "probabilities" });
    assert.deepEqual(m.preprocessing, {
      width: 224,
      height: 224,
      resize: { mode: "direct" },
      channelOrder: "BGR",
      scale: 1,
      mean: [123.68, 116.779, 103.939], // R, G, B
      std: [1, 1, 1],
    });
    assert.equal(m.provenance.kind, "pretrained");
    assert.equal(m.parameters, 60_965_224);
  }
  const tv = zooManifest(findZooEntry("torchvision")!);
  assert.deepEqual(tv.preprocessing, {
    width: 224,
    height: 224,
    resize: { mode: "shorter_side", size: 256 },
    channelOrder: "RGB",
    scale: 1 / 255,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
  });
  assert.deepEqual(tv.output, { name: "logits", kind: "logits" });
  assert.equal(tv.parameters, 61_100_840);
});

Deno.test("zoo preprocessing of a fixture matches hand-computed values: BGR, mean subtracted, no scaling", async () => {
  // coffee_pillow_224.png is 224x224, so the direct resize to 224x224 leaves pixels as they are.
  // Its pixels, read with an independent PNG decoder (zlib + PNG filters in Python):
  //   (x, y)      R    G    B
  //   (0, 0)     152   59   23
  //   (223, 0)   200  118   67
  //   (100, 50)  146   51   15
  //   (37, 180)   72    8    3
  //   (223, 223) 142   80   44
  // Tensor planes are B, G, R, each value = pixel - mean (R 123.68, G 116.779, B 103.939).
  const image = await decodeImage(await fixture("coffee_pillow_224.png"));
  const x = preprocess(image, ZOO_PREPROCESSING);
  assert.equal(x.length, 3 * 224 * 224);
  const at = (plane: number, px: number, py: number) => x[plane * 224 * 224 + py * 224 + px];
  const expected: [number, number, [number, number, number]][] = [
    // [x, y, [B - 103.939, G - 116.779, R - 123.68]]
    [0, 0, [-80.939, -57.779, 28.32]],
    [223, 0, [-36.939, 1.221, 76.32]],
    [100, 50, [-88.939, -65.779, 22.32]],
    [37, 180, [-100.939, -108.779, -51.68]],
    [223, 223, [-59.939, -36.779, 18.32]],
  ];
  for (const [px, py, bgr] of expected) {
    for (let plane = 0; plane < 3; plane++) {
      assert.ok(
        Math.abs(at(plane, px, py) - bgr[plane]) < 1e-4,
        `(${px}, ${py}) plane ${"BGR"[plane]}: ${at(plane, px, py)}, expected ${bgr[plane]}`,
      );
    }
  }
});

Deno.test("zoo preprocessing resizes straight to 224x224 without cropping", async () => {
  // chelsea.jpg is 448x288: a crop would drop columns; direct resize squeezes it instead.
  const image = await decodeImage(await fixture("chelsea.jpg"));
  const x = preprocess(image, ZOO_PREPROCESSING);
  const resized = resizeRgba(image, 224, 224); // the image path's own resize, tested against Pillow
  const mean = [123.68, 116.779, 103.939];
  let worst = 0;
  for (let i = 0; i < 224 * 224; i++) {
    for (let plane = 0; plane < 3; plane++) {
      const rgb = 2 - plane; // plane 0 is B
      const want = resized.data[i * 4 + rgb] - mean[rgb];
      worst = Math.max(worst, Math.abs(x[plane * 224 * 224 + i] - want));
    }
  }
  assert.ok(worst <= 0.5 + 1e-3, `max difference ${worst}`); // resizeRgba rounds to bytes
});

Deno.test("names: findZooEntry takes aliases, namedEntry leaves paths alone", () => {
  assert.equal(findZooEntry("int8")?.name, "bvlcalexnet-12-int8");
  assert.equal(findZooEntry("QDQ")?.name, "bvlcalexnet-12-qdq");
  assert.equal(findZooEntry("fp32")?.name, "bvlcalexnet-12");
  assert.equal(findZooEntry("bvlcalexnet-12.onnx")?.name, "bvlcalexnet-12");
  assert.equal(findZooEntry("torchvision")?.name, "alexnet-torchvision");
  assert.equal(findZooEntry("resnet50"), undefined);
  assert.equal(namedEntry("bvlcalexnet-12-int8")?.name, "bvlcalexnet-12-int8");
  assert.equal(namedEntry("bvlcalexnet-12-int8.onnx"), undefined);
  assert.equal(namedEntry("models/int8"), undefined);
  assert.deepEqual(resolveModelName("synthetic"), { model: undefined, manifest: undefined });
  assert.equal(resolveModelName("my.onnx"), undefined);
  assert.equal(resolveModelName(undefined), undefined);
  const fp32 = resolveModelName("fp32", new URL("file:///srv/models/"));
  assert.deepEqual(fp32, {
    model: "/srv/models/bvlcalexnet-12.onnx",
    manifest: "/srv/models/bvlcalexnet-12.json",
  });
});

/** A fake backend over a fixed batch of 1: each output row is [sum of the image, run index]. */
function fakeBackend(inputShape: (number | null)[]) {
  let runs = 0;
  const backend = {
    name: "fake",
    threads: 1,
    inputShape,
    kernels: { lrn: "ort" as const, int8: "ort" as const },
    get queueDepth() {
      return runs;
    },
    run(input: Float32Array, dims: readonly number[]): Promise<BackendOutput> {
      if (inputShape[0] === 1 && dims[0] !== 1) throw new RangeError("fixed batch of 1");
      const size = input.length / dims[0];
      const data = new Float32Array(dims[0] * 2);
      for (let n = 0; n < dims[0]; n++) {
        data[n * 2] = input.subarray(n * size, (n + 1) * size).reduce((a, b) => a + b, 0);
        data[n * 2 + 1] = runs;
      }
      runs++;
      return Promise.resolve({ data, dims: [dims[0], 2] });
    },
    capture: () => Promise.resolve({}),
    release: () => Promise.resolve(),
  };
  return backend as Backend;
}

Deno.test("loopFixedBatch runs a batch over a batch-1 graph as a loop, in order", async () => {
  const inner = fakeBackend([1, 3, 2, 2]);
  const backend = loopFixedBatch(inner);
  const x = Float32Array.from({ length: 3 * 12 }, (_, i) => Math.floor(i / 12) + 1); // images of 1s, 2s, 3s
  const y = await backend.run(x, [3, 3, 2, 2]);
  assert.deepEqual(y.dims, [3, 2]);
  assert.deepEqual(Array.from(y.data), [12, 0, 24, 1, 36, 2]);
  assert.equal(backend.queueDepth, 3, "getters stay live through the wrapper");
  assert.equal(backend.name, "fake");
  const single = await backend.run(x.subarray(0, 12), [1, 3, 2, 2]);
  assert.deepEqual(Array.from(single.data), [12, 3]);
  // Graphs with a free batch dimension are left alone.
  const free = fakeBackend([null, 3, 2, 2]);
  assert.equal(loopFixedBatch(free), free);
});

async function writeZooModel(encoding: ZooEncoding) {
  const dir = await Deno.makeTempDir({ prefix: "alexnet-edge-zoo-" });
  const dirUrl = new URL(`file://${dir}/`);
  const bytes = buildZooInterfaceModel(encoding);
  const entry = zooTestEntry(encoding, bytes);
  await Deno.writeFile(new URL(entry.file, dirUrl), bytes);
  const manifestUrl = await writeZooManifest(entry, dirUrl);
  return { dir, bytes, entry, model: `${dir}/${entry.file}`, manifest: manifestUrl.pathname };
}

for (const encoding of ["fp32", "qoperator", "qdq"] as const) {
  Deno.test({
    name: `a ${encoding} model with the zoo's interface loads and classifies with the zoo manifest`,
    ...t,
    async fn() {
      const paths = await writeZooModel(encoding);
      try {
        const classifier = await loadClassifier(paths);
        assert.deepEqual(classifier.info.input, {
          name: "data_0",
          shape: [null, 3, 224, 224],
          datatype: "float32",
        });
        assert.equal(classifier.info.output.classes, 1000);
        assert.equal(classifier.info.weights.kind, "pretrained");
        assert.equal(classifier.info.weights.notice, undefined);

        // /predict and /v1/models answer with it.
        const app = createApp({ classifier });
        const bytes = await fixture("chelsea.jpg");
        const res = await app.request("/predict?top_k=3", { method: "POST", body: bytes });
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.equal(body.model, paths.entry.name);
        assert.equal(body.predictions.length, 3);
        const models = await (await app.request("/v1/models")).json();
        assert.equal(models.models[0].name, paths.entry.name);
        assert.equal(models.models[0].weights.sha256, paths.entry.sha256);
        assert.equal(models.models[0].preprocessing.channelOrder, "BGR");

        // Same scores as a bare session on the manifest's tensor (the output is already softmax).
        const x = preprocess(await decodeImage(bytes), ZOO_PREPROCESSING);
        const session = await ort.InferenceSession.create(paths.bytes);
        const out = await session.run({ data_0: new ort.Tensor("float32", x, [1, 3, 224, 224]) });
        const y = out.softmaxout_1.data as Float32Array;
        await session.release();
        assert.ok(Math.abs(y.reduce((a, b) => a + b, 0) - 1) < 1e-4);
        for (const p of body.predictions) assert.ok(Math.abs(p.score - y[p.index]) < 1e-6);

        // A batch of 3 runs as a loop over the batch-1 graph.
        const batch = new Float32Array(3 * x.length);
        batch.set(x, 0);
        batch.set(x.map((v) => -v), x.length);
        batch.set(x, 2 * x.length);
        const rows = await classifier.infer(batch, 3);
        assert.equal(rows.length, 3);
        for (let i = 0; i < 1000; i++) {
          assert.ok(Math.abs(rows[0][i] - y[i]) < 1e-6 && Math.abs(rows[2][i] - y[i]) < 1e-6);
        }
        assert.notDeepEqual(Array.from(rows[1]), Array.from(rows[0]));
        await classifier.release();
      } finally {
        await Deno.remove(paths.dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "--model names a zoo model or synthetic",
  ...t,
  async fn() {
    // "synthetic" loads the synthetic AlexNet whatever else is in models/.
    const classifier = await loadClassifier({ model: "synthetic", seed: 1 });
    assert.equal(classifier.info.weights.kind, "synthetic");
    await classifier.release();
  },
});
