import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { decodeImage, preprocess } from "../../src/image/mod.ts";
import { partitionModel } from "../../src/graph/partition.ts";
import { onnx } from "../../src/graph/onnx.ts";
import { kernelRegistry } from "../../src/runtime/custom_ops.ts";
import { quantizeModel, type QuantizeOptions } from "../../src/graph/quantize.ts";
import { ensureSyntheticModel, loadModel } from "../../src/model/store.ts";
import { createWasmBackend } from "../../src/runtime/mod.ts";
import { wasmEvaluator } from "../../src/runtime/evaluate.ts";
import { topK } from "../../src/classify/mod.ts";
import { fixture } from "../_helpers.ts";
import { realisticPhotos } from "../_photos.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const PHOTOS = ["chelsea.jpg", "coffee.png", "rocket.jpg"];

async function int8AlexNet(options: QuantizeOptions = {}) {
  const model = await loadModel(await ensureSyntheticModel(1));
  const calibration = (await realisticPhotos(8, 7)).map((img) =>
    preprocess(img, model.manifest.preprocessing)
  );
  const { bytes } = await quantizeModel(
    model.bytes,
    calibration,
    wasmEvaluator("data_0", [1, 3, 224, 224]),
    options,
  );
  return { bytes, spec: model.manifest.preprocessing };
}

Deno.test({
  name:
    "the int8 AlexNet splits so fc6-fc8 run on our Gemm kernel with their DequantizeLinear nodes and ReLU (weight-only and QDQ)",
  ...t,
  async fn() {
    // Default: weight-only Gemm (float input, float bias). `weightOnly: []`: the QDQ
    // Gemm older files have (Q/DQ on the input, int32 bias).
    for (const weightOnly of [undefined, []]) {
      const { bytes } = await int8AlexNet({ weightOnly });
      const { parts } = partitionModel(bytes, new Set(["Gemm"]), {
        fuseQdq: () => true,
        foldDequantize: true,
      });
      const kernels = parts.filter((p) => p.kind === "kernel");
      assert.deepEqual(kernels.map((k) => k.kind === "kernel" && k.node.output![0]), [
        "fc6_1",
        "fc7_1",
        "fc8_1",
      ]);
      const registry = kernelRegistry("ort", "custom");
      for (const k of kernels) {
        assert.ok(k.kind === "kernel");
        const ops = k.absorbed.map((n) => n.opType).sort();
        const expected = weightOnly
          ? ["DequantizeLinear", "DequantizeLinear", "DequantizeLinear", "QuantizeLinear"]
          : ["DequantizeLinear"];
        if (k.node.output![0] !== "fc8_1") expected.push("Relu");
        assert.deepEqual(ops, expected.sort());
        // Our Gemm kernel takes both layouts.
        assert.ok(registry.get("Gemm")!.accepts!(k), k.node.output![0]);
      }
      // The convolutions stay in onnxruntime, with their weights dequantized once.
      const first = parts[0];
      assert.ok(first.kind === "graph" && first.folded);
      // Left: the Q/DQ pairs on the five conv inputs of the QDQ file (none in the
      // weight-only one); the weight DQs were folded.
      const pairs = weightOnly ? 5 : 0;
      assert.equal(first.ops.filter((o) => o === "DequantizeLinear").length, pairs);
      assert.equal(first.ops.filter((o) => o === "QuantizeLinear").length, pairs);
    }
  },
});

Deno.test({
  name:
    "int8 AlexNet on our kernels matches the graph's ONNX semantics (weight-only and QDQ): top-1 (or a near-tie), |diff| <= 1e-2",
  ...t,
  async fn() {
    for (const weightOnly of [undefined, []]) await matchesOnnx({ weightOnly });
  },
});

/** Ours (1, 2 and default threads) against onnxruntime evaluating every node as written. */
async function matchesOnnx(options: QuantizeOptions) {
  const { bytes, spec } = await int8AlexNet(options);
  const io = { inputName: "data_0", outputName: "softmaxout_1" };
  // Default threads (the cores; this first backend also sets onnxruntime-web's, which the
  // reference's float sums depend on: at 1 thread they move it by up to 3e-3 from ours).
  const ours = await createWasmBackend(bytes, { ...io, int8: "custom" });
  assert.deepEqual(ours.kernels, { lrn: "custom", int8: "custom" });
  // Layers split over 2 threads (a helper Worker) give the same bits as 1 thread.
  const split = await createWasmBackend(bytes, {
    ...io,
    int8: "custom",
    threads: 2,
    eagerThreads: true,
  });
  const single = await createWasmBackend(bytes, { ...io, int8: "custom", threads: 1 });
  assert.deepEqual([split.threads, single.threads], [2, 1]);
  // The reference: onnxruntime evaluating every Q/DQ node as written (no graph rewrites).
  const session = await ort.InferenceSession.create(bytes, {
    graphOptimizationLevel: "disabled",
  });
  const theirs = {
    run: async (data: Float32Array, dims: number[]) => ({
      data: (await session.run({ data_0: new ort.Tensor("float32", data, dims) })).softmaxout_1
        .data as Float32Array,
    }),
    release: () => session.release(),
  };
  const batch = new Float32Array(PHOTOS.length * 3 * 224 * 224);
  for (const [i, name] of PHOTOS.entries()) {
    preprocess(await decodeImage(await fixture(name)), spec, batch, i * 3 * 224 * 224);
  }
  const dims = [PHOTOS.length, 3, 224, 224];
  const a = await ours.run(batch, dims), b = await theirs.run(batch, dims);
  const [a1, a2] = [await single.run(batch, dims), await split.run(batch, dims)];
  assert.ok(a2.data.every((v, i) => Object.is(v, a1.data[i])), "2 threads differ from 1");
  assert.ok(a.data.every((v, i) => Object.is(v, a1.data[i])), "default threads differ from 1");
  let worst = 0;
  for (let i = 0; i < a.data.length; i++) {
    worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
  }
  console.log(
    `max |diff| ours vs the ONNX reference (${JSON.stringify(options)}): ${worst.toExponential(2)}`,
  );
  // QDQ file: our conv sums are exact integers, the reference sums dequantized floats;
  // the last-bit differences flip a few activations by one step at the next
  // QuantizeLinear, which moves probabilities (top ones here 0.08-0.4) by up to 8e-4 to
  // 6.5e-3 depending on the photos and the calibration (fc layers alone: 1.5e-7); the
  // chain with onnxruntime between our layers gives the same. Weight-only file: the
  // reference is float, ours rounds each layer's input to up to int16. A wrong layer
  // moves them by far more and changes the top-5.
  assert.ok(worst <= 1e-2, `max |diff| ${worst}`);
  for (let n = 0; n < PHOTOS.length; n++) {
    const ref = b.data.subarray(n * 1000, (n + 1) * 1000);
    const order = (x: Float32Array) =>
      topK(x.subarray(n * 1000, (n + 1) * 1000), 5, []).map((p) => p.index);
    const [ours5, ref5] = [order(a.data), order(b.data)];
    // The same top-1, unless the reference itself has a near-tie there: chelsea.jpg's
    // top two (649, 594) were 0.1169 vs 0.1138 with one calibration, and both our chain
    // and our kernels between onnxruntime parts put 594 first. Then ours must be the
    // reference's runner-up within the tolerance above.
    if (ours5[0] !== ref5[0]) {
      const gap = ref[ref5[0]] - ref[ours5[0]];
      assert.ok(ours5[0] === ref5[1] && gap <= 1e-2, `${PHOTOS[n]}: top-1 gap ${gap}`);
    }
    // Near-tied lower ranks of this synthetic model may swap.
    assert.ok(ours5.filter((i) => ref5.includes(i)).length >= 4, PHOTOS[n]);
  }
  await Promise.all([ours.release(), split.release(), single.release(), theirs.release()]);
}

Deno.test({
  name: "the int8 AlexNet runs as one chain of our kernels: no onnxruntime part is left",
  ...t,
  async fn() {
    const { bytes } = await int8AlexNet();
    const registry = kernelRegistry("ort", "custom");
    const { parts } = partitionModel(bytes, new Set(registry.keys()), {
      fuseQdq: (n) => registry.get(n.opType!)?.fusesQdq ?? false,
      accept: (p) => registry.get(p.node.opType!)?.accepts?.(p) ?? true,
      wholeGraphOnly: (n) => registry.get(n.opType!)?.wholeGraphOnly ?? false,
    });
    assert.deepEqual(parts.map((p) => p.kind === "kernel" ? p.opType : "graph"), [
      ..."Conv LRN MaxPool Conv LRN MaxPool Conv Conv Conv MaxPool Flatten".split(" "),
      ..."Gemm Gemm Gemm Softmax".split(" "),
    ]);
    // One node our kernels refuse (Softmax on axis 0) leaves onnxruntime in charge of
    // all the float glue: the int8 layers still run on our kernels, cut between parts.
    const model = onnx.ModelProto.decode(bytes);
    const softmax = model.graph!.node!.find((n) => n.opType === "Softmax")!;
    softmax.attribute = [{ name: "axis", type: 2, i: 0 }];
    const mixed = partitionModel(onnx.ModelProto.encode(model).finish(), new Set(registry.keys()), {
      fuseQdq: (n) => registry.get(n.opType!)?.fusesQdq ?? false,
      accept: (p) => registry.get(p.node.opType!)?.accepts?.(p) ?? true,
      wholeGraphOnly: (n) => registry.get(n.opType!)?.wholeGraphOnly ?? false,
    });
    const kernels = mixed.parts.flatMap((p) => p.kind === "kernel" ? [p.opType] : []);
    assert.deepEqual(kernels, [..."Conv Conv Conv Conv Conv Gemm Gemm Gemm".split(" ")]);
    assert.ok(mixed.parts.some((p) => p.kind === "graph" && p.ops.includes("MaxPool")));
  },
});

Deno.test({
  name: "a float model gets no int8 kernels: its Conv and Gemm nodes stay in onnxruntime",
  ...t,
  async fn() {
    const model = await loadModel(await ensureSyntheticModel(1));
    const io = { inputName: "data_0", outputName: "softmaxout_1" };
    // The real path: the int8 kernels' own pattern checks reject the float layers.
    const backend = await createWasmBackend(model.bytes, { ...io, int8: "custom", lrn: "ort" });
    assert.deepEqual(backend.kernels, { lrn: "ort", int8: "ort" });
    await backend.release();
  },
});
