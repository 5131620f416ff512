import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { preprocess } from "../../src/image/mod.ts";
import { decodeModel, onnx } from "../../src/graph/onnx.ts";
import {
  biasCorrect,
  nonNegativeInt8Params,
  quantizeModel,
  quantizePerChannel,
  uint8Params,
} from "../../src/graph/quantize.ts";
import { gptqRound, invertSpd } from "../../src/graph/_quantize_gptq.ts";
import { applySmoothing, smoothPairs, smoothScales } from "../../src/graph/_quantize_smooth.ts";
import { ensureSyntheticModel, loadModel } from "../../src/model/store.ts";
import { wasmEvaluator } from "../../src/runtime/evaluate.ts";
import { topK } from "../../src/classify/mod.ts";
import { realisticPhotos } from "../_photos.ts";
import { buildTinyModel } from "../_helpers.ts";
import { mulberry32 } from "../../src/graph/weights.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const onnxEncode = (m: ReturnType<typeof decodeModel>) => onnx.ModelProto.encode(m).finish();

Deno.test("uint8 activation parameters keep zero exact", () => {
  const a = uint8Params(0, 5.1);
  assert.equal(a.zeroPoint, 0);
  assert.equal(a.scale, Math.fround(0.02));
  const p = uint8Params(-1, 3);
  assert.equal(p.scale, Math.fround(4 / 255));
  assert.equal(p.zeroPoint, 64); // round(1 / (4/255)) = round(63.75)
  assert.equal(uint8Params(2, 4).zeroPoint, 0); // range widened to include 0
  assert.equal(uint8Params(0, 0).scale, 1);
});

Deno.test("weights quantize symmetric per output channel to [-127, 127]", () => {
  // w: [2 channels, 3]
  const { q, scales } = quantizePerChannel(
    new Float32Array([1.27, -0.635, 0, 0.03, 0.01, -0.04]),
    2,
    3,
  );
  assert.deepEqual(Array.from(scales, (s) => +s.toFixed(8)), [0.01, +(0.04 / 127).toFixed(8)]);
  // float32(-0.635) / float32(0.01) is just below -63.5, so -64; 0.03 / (0.04/127) = 95.25
  assert.deepEqual(Array.from(q), [127, -64, 0, 95, 32, -127]);
  // A channel of zeros gets scale 1 (not 0, which DequantizeLinear cannot use).
  assert.deepEqual(Array.from(quantizePerChannel(new Float32Array(4), 2, 2).scales), [1, 1]);
  // Axis 1 layout (MatMul [K, N]): inner 1, channels N.
  const m = quantizePerChannel(new Float32Array([1, 2, -1, -4]), 2, 1);
  assert.deepEqual(Array.from(m.q), [127, 64, -127, -127]);
});

Deno.test({
  name: "the QDQ model has int8 weights, int32 biases and Q/DQ around each quantized layer",
  ...t,
  async fn() {
    const fp32 = buildTinyModel(32, 24);
    const random = mulberry32(3);
    const inputs = Array.from(
      { length: 4 },
      () => Float32Array.from({ length: 3 * 24 * 32 }, () => random() * 2 - 1),
    );
    const evaluate = wasmEvaluator("pixels", [1, 3, 24, 32]);
    const { bytes, ranges, quantized } = await quantizeModel(fp32, inputs, evaluate, {
      weightOnly: [],
    });
    assert.deepEqual(quantized, ["c1", "logits"]);
    // Layer inputs only by default; the logits would feed no quantized layer anyway.
    assert.deepEqual(Object.keys(ranges).sort(), ["f1", "pixels"]);
    const graph = decodeModel(bytes).graph!;
    const types = new Map(graph.initializer!.map((i) => [i.name, i.dataType]));
    assert.equal(types.get("w1_quantized"), 3); // INT8
    assert.equal(types.get("b1_quantized"), 6); // INT32
    assert.ok(!types.has("w1"), "the float weights are gone");
    const ops = graph.node!.map((n) => n.opType);
    assert.equal(ops.filter((o) => o === "QuantizeLinear").length, 2);
    assert.equal(ops.filter((o) => o === "DequantizeLinear").length, 2 + 4);
    // It runs, and stays close to the float model.
    const a = await evaluate(fp32, inputs[0], ["logits"]);
    const b = await evaluate(bytes, inputs[0], ["logits"]);
    for (let i = 0; i < 4; i++) {
      assert.ok(Math.abs(a.logits[i] - b.logits[i]) < 0.05, `${a.logits[i]} vs ${b.logits[i]}`);
    }
  },
});

Deno.test("non-negative activations as int8 use zero point 0 and 0..127", () => {
  const a = nonNegativeInt8Params(0, 6.35);
  assert.equal(a.zeroPoint, 0);
  assert.equal(a.scale, Math.fround(0.05));
  assert.equal(nonNegativeInt8Params(0, 0).scale, 1);
});

Deno.test("7-bit weights quantize symmetric per output channel to [-63, 63]", () => {
  // w: [2 channels, 2]
  const { q, scales } = quantizePerChannel(new Float32Array([0.63, -0.315, 1, -2]), 2, 2, 63);
  assert.deepEqual(Array.from(scales, (s) => Math.fround(s)), [
    Math.fround(0.01),
    Math.fround(2 / 63),
  ]);
  // float32(-0.315) / float32(0.01) is just below -31.5, so -32; 1 / (2/63) = 31.4999...
  assert.deepEqual(Array.from(q), [63, -32, 31, -63]);
});

Deno.test({
  name:
    "nonNegativeInt8 stores ReLU outputs as int8 with zero point 0; weightBits 7 keeps |q| <= 63",
  ...t,
  async fn() {
    const fp32 = buildTinyModel(32, 24);
    const random = mulberry32(3);
    const inputs = Array.from(
      { length: 4 },
      () => Float32Array.from({ length: 3 * 24 * 32 }, () => random() * 2 - 1),
    );
    const evaluate = wasmEvaluator("pixels", [1, 3, 24, 32]);
    for (const weightRounding of ["nearest", "gptq"] as const) {
      const { bytes, ranges } = await quantizeModel(fp32, inputs, evaluate, {
        weightOnly: [],
        nonNegativeInt8: true,
        weightBits: 7,
        weightRounding,
      });
      // f1 (after ReLU and pooling) starts at 0: int8, zero point 0; the pixels stay uint8.
      assert.equal(ranges.f1.type, "int8");
      assert.equal(ranges.f1.zeroPoint, 0);
      assert.equal(ranges.f1.scale, Math.fround(ranges.f1.max / 127));
      assert.equal(ranges.pixels.type, undefined);
      const graph = decodeModel(bytes).graph!;
      const init = new Map(graph.initializer!.map((i) => [i.name, i]));
      assert.equal(init.get("f1_zero_point")!.dataType, 3); // INT8
      assert.equal(init.get("pixels_zero_point")!.dataType, 2); // UINT8
      for (const w of ["w1_quantized", "w2_quantized"]) {
        const raw = init.get(w)!.rawData!;
        const q = new Int8Array(raw.buffer, raw.byteOffset, raw.byteLength);
        assert.ok(q.every((v) => Math.abs(v) <= 63), `${w} within [-63, 63]`);
        assert.ok(q.some((v) => Math.abs(v) === 63), `${w} uses the 7-bit range`);
      }
      // It runs, and stays close to the float model.
      const a = await evaluate(fp32, inputs[0], ["logits"]);
      const b = await evaluate(bytes, inputs[0], ["logits"]);
      for (let i = 0; i < 4; i++) {
        assert.ok(Math.abs(a.logits[i] - b.logits[i]) < 0.1, `${a.logits[i]} vs ${b.logits[i]}`);
      }
    }
  },
});

Deno.test({
  name: "weight-only layers (all by default) keep a float input and a float, corrected bias",
  ...t,
  async fn() {
    const fp32 = buildTinyModel(32, 24);
    const random = mulberry32(5);
    const inputs = Array.from(
      { length: 4 },
      () => Float32Array.from({ length: 3 * 24 * 32 }, () => random() * 2 - 1),
    );
    const evaluate = wasmEvaluator("pixels", [1, 3, 24, 32]);
    for (const weightOnly of [undefined, ["Gemm"], ["logits"], ["Gemm", "Conv"]]) {
      const result = await quantizeModel(fp32, inputs, evaluate, { weightOnly });
      const all = weightOnly?.includes("Conv") ?? true;
      assert.deepEqual(result.quantized, ["c1", "logits"]);
      assert.deepEqual(result.weightOnly, all ? ["c1", "logits"] : ["logits"]);
      // Only the quantized layers' inputs get a range and a Q/DQ pair.
      assert.deepEqual(Object.keys(result.ranges), all ? [] : ["pixels"]);
      const graph = decodeModel(result.bytes).graph!;
      const gemm = graph.node!.find((n) => n.opType === "Gemm")!;
      // The Gemm reads the float f1 itself, its int8 weights through a DequantizeLinear
      // and a float bias (the original one, bias-corrected).
      assert.deepEqual(gemm.input, ["f1", "w2_dequantized", "b2"]);
      const types = new Map(graph.initializer!.map((i) => [i.name, i.dataType]));
      assert.equal(types.get("w2_quantized"), 3); // INT8
      assert.equal(types.get("b2"), 1); // FLOAT
      assert.ok(!types.has("b2_quantized") && !types.has("f1_scale"));
      const ops = graph.node!.map((n) => n.opType);
      assert.equal(ops.filter((o) => o === "QuantizeLinear").length, all ? 0 : 1);
      // onnxruntime runs it, close to the float model.
      const a = await evaluate(fp32, inputs[0], ["logits"]);
      const b = await evaluate(result.bytes, inputs[0], ["logits"]);
      for (let i = 0; i < 4; i++) {
        assert.ok(Math.abs(a.logits[i] - b.logits[i]) < 0.05, `${a.logits[i]} vs ${b.logits[i]}`);
      }
    }
  },
});

Deno.test({
  name:
    "int8 AlexNet (default: weight-only, GPTQ) agrees with fp32 on 50 realistic photos, closer than nearest rounding",
  ...t,
  async fn() {
    const model = await loadModel(await ensureSyntheticModel(1));
    const spec = model.manifest.preprocessing;
    const tensor = (img: Parameters<typeof preprocess>[0]) => preprocess(img, spec);
    // Calibrate and evaluate on different photos.
    const calibration = (await realisticPhotos(20, 101)).map(tensor);
    const evaluation = (await realisticPhotos(50, 202)).map(tensor);
    const evaluate = wasmEvaluator("data_0", [1, 3, 224, 224]);
    const run = async (bytes: Uint8Array) => {
      const session = await ort.InferenceSession.create(bytes);
      const out: Float32Array[] = [];
      for (const x of evaluation) {
        const feeds = { data_0: new ort.Tensor("float32", x, [1, 3, 224, 224]) };
        out.push((await session.run(feeds)).softmaxout_1.data as Float32Array);
      }
      await session.release();
      return out;
    };
    const fp32 = await run(model.bytes);
    const compare = (int8: Float32Array[]) => {
      let top1 = 0, overlap = 0, marginSq = 0;
      for (const [i, a] of fp32.entries()) {
        const b = int8[i];
        const [ta, tb] = [a, b].map((p) => topK(p, 5, []).map((x) => x.index));
        if (ta[0] === tb[0]) top1++;
        overlap += tb.filter((c) => ta.includes(c)).length;
        // Error of fp32's top-1 vs top-2 log-probability margin: what a flip takes.
        const margin = (p: Float32Array) => Math.log(p[ta[0]]) - Math.log(p[ta[1]]);
        marginSq += (margin(b) - margin(a)) ** 2;
      }
      const n = evaluation.length;
      return { top1: top1 / n, overlap: overlap / n, marginErr: Math.sqrt(marginSq / n) };
    };
    const results: Record<string, ReturnType<typeof compare>> = {};
    for (
      const [name, options] of [["default", {}], ["nearest", {
        weightRounding: "nearest",
        smoothing: 0,
      }]] as const
    ) {
      const { bytes } = await quantizeModel(model.bytes, calibration, evaluate, options);
      const r = results[name] = compare(await run(bytes));
      console.log(
        `${name}: top-1 agreement ${(r.top1 * 100).toFixed(1)}%, mean top-5 overlap ${
          r.overlap.toFixed(2)
        }, margin rms error ${r.marginErr.toFixed(4)}`,
      );
    }
    // Measured (bench/int8_agreement.ts, docs/int8.md): the default (weight-only int8,
    // GPTQ) agrees on 50/50 here, margin error 0.014, and on 99.5% of 600 photos on
    // our kernels; the three misses are true ties (fp32 margins below 0.01). Near-tied
    // top-2 classes of this synthetic model flip with the photos' last bits, so these
    // guard the measured level with room for that.
    assert.ok(results.default.top1 >= 0.96, `top-1 agreement ${results.default.top1}`);
    assert.ok(results.default.overlap >= 4.8, `top-5 overlap ${results.default.overlap}`);
    assert.ok(results.default.marginErr < 0.03, `margin error ${results.default.marginErr}`);
    // Smoothing + GPTQ: a smaller margin error than rounding each weight to nearest.
    assert.ok(
      results.default.marginErr < 0.9 * results.nearest.marginErr,
      `margin error ${results.default.marginErr} vs nearest ${results.nearest.marginErr}`,
    );
  },
});

Deno.test({
  name: "quantizeOutputs adds Q/DQ after layers that feed another quantized layer only",
  ...t,
  async fn() {
    const fp32 = buildTinyModel(32, 24);
    const x = Float32Array.from({ length: 3 * 24 * 32 }, (_, i) => Math.sin(i));
    const { ranges } = await quantizeModel(fp32, [x], wasmEvaluator("pixels", [1, 3, 24, 32]), {
      quantizeOutputs: true,
      weightOnly: [],
    });
    // c1 (conv output) flows into the Gemm; logits flow into nothing quantized.
    assert.deepEqual(Object.keys(ranges).sort(), ["c1", "f1", "pixels"]);
    // With the Gemm weight-only, c1 feeds no quantized input.
    const gemmOnly = await quantizeModel(fp32, [x], wasmEvaluator("pixels", [1, 3, 24, 32]), {
      quantizeOutputs: true,
      weightOnly: ["Gemm"],
    });
    assert.deepEqual(Object.keys(gemmOnly.ranges), ["pixels"]);
  },
});

Deno.test("bias correction removes the mean shift rounding puts on each output", () => {
  // Gemm w: [2, 3] (transB layout), inputs with mean [1, 2, 3].
  const w = new Float32Array([0.11, -0.52, 0.33, 0.9, 0.01, -0.4]);
  const { q, scales } = quantizePerChannel(w, 2, 3);
  const mean = new Float64Array([1, 2, 3]);
  const bias = new Float32Array([0.5, -0.5]);
  biasCorrect(bias, w, q, scales, [2, 3], 0, mean, 1);
  for (let o = 0; o < 2; o++) {
    let exact = 0, rounded = 0;
    for (let i = 0; i < 3; i++) {
      exact += w[o * 3 + i] * mean[i];
      rounded += q[o * 3 + i] * Math.fround(scales[o]) * mean[i];
    }
    // With the corrected bias, the quantized layer's mean output equals the float one.
    assert.ok(Math.abs(rounded + bias[o] - (exact + [0.5, -0.5][o])) < 1e-6);
  }
});

/**
 * Plain Optimal Brain Quantization, the reference for gptqRound: the dense
 * inverse Hessian of the columns not yet rounded, recomputed for each column.
 * w: [rows, k], x: [n, k].
 */
function obqReference(
  w: Float32Array,
  rows: number,
  k: number,
  scales: Float32Array,
  x: Float64Array,
  n: number,
  damp: number,
): Int8Array {
  let trace = 0;
  for (const v of x) trace += v * v;
  const lambda = damp * trace / k;
  const h = new Float64Array(k * k); // lambda I + X^T X
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < k; b++) {
      let s = a === b ? lambda : 0;
      for (let i = 0; i < n; i++) s += x[i * k + a] * x[i * k + b];
      h[a * k + b] = s;
    }
  }
  const q = new Int8Array(rows * k);
  for (let m = 0; m < rows; m++) {
    const wm = Array.from(w.subarray(m * k, (m + 1) * k));
    const s = Math.fround(scales[m]);
    for (let j = 0; j < k; j++) {
      const f = k - j, sub = new Float64Array(f * f);
      for (let a = 0; a < f; a++) {
        for (let b = 0; b < f; b++) sub[a * f + b] = h[(a + j) * k + b + j];
      }
      const p = invertSpd(sub, f);
      q[m * k + j] = Math.max(-127, Math.min(127, Math.round(wm[j] / s)));
      const e = (wm[j] - q[m * k + j] * s) / p[0];
      for (let b = 1; b < f; b++) wm[j + b] -= e * p[b];
    }
  }
  return q;
}

/** ||(Q * s - W) X^T||^2: the layer's output error on the calibration inputs. */
function outputError(
  q: Int8Array,
  w: Float32Array,
  scales: Float32Array,
  x: Float64Array,
  n: number,
  k: number,
) {
  let e = 0;
  for (let m = 0; m < scales.length; m++) {
    for (let i = 0; i < n; i++) {
      let d = 0;
      for (let j = 0; j < k; j++) {
        d += (q[m * k + j] * Math.fround(scales[m]) - w[m * k + j]) * x[i * k + j];
      }
      e += d * d;
    }
  }
  return e;
}

Deno.test("gptq rounding with a low-rank Hessian equals dense OBQ and beats nearest", () => {
  const random = mulberry32(5);
  // w: [6, 40]; x: [n, 40] with n below k (as fc6: 20 photos, k = 9216) and above it.
  for (const n of [8, 60]) {
    const [rows, k] = [6, 40];
    const w = Float32Array.from({ length: rows * k }, () => random() * 2 - 1);
    // Correlated, non-centred inputs (as post-ReLU activations).
    const base = Float64Array.from({ length: k }, () => random());
    const x = Float64Array.from({ length: n * k }, (_, i) => base[i % k] + 0.3 * random());
    // A coarse grid so that rounding matters at this size.
    const scales = Float32Array.from({ length: rows }, () => 0.05);
    const q = gptqRound(w, rows, k, scales, x, n, 0.01);
    assert.deepEqual(Array.from(q), Array.from(obqReference(w, rows, k, scales, x, n, 0.01)));
    const nearest = Int8Array.from(w, (v) => Math.round(v / Math.fround(0.05)));
    const [eq, en] = [outputError(q, w, scales, x, n, k), outputError(nearest, w, scales, x, n, k)];
    assert.ok(eq < en / 2, `n ${n}: gptq ${eq} vs nearest ${en}`);
  }
});

Deno.test({
  name: "smoothing moves per-channel ranges between layers without changing the float model",
  ...t,
  async fn() {
    const model = decodeModel(buildTinyModel(32, 24));
    // c1 -> Relu -> GlobalAveragePool -> Flatten -> Gemm: one smoothable tensor.
    const pairs = smoothPairs(model.graph!);
    assert.deepEqual(pairs.map((p) => [p.tensor, p.channels]), [["f1", 4]]);
    assert.deepEqual(Array.from(smoothScales(new Float64Array([4, 1, 0, 2]), 0.5)), [
      1,
      2,
      1,
      Math.SQRT2,
    ]);
    applySmoothing(model.graph!, pairs[0], new Float64Array([1, 3, 0.5, 7]));
    // Both models with the connecting tensor f1 as an extra output.
    const withF1 = (m: ReturnType<typeof decodeModel>) => {
      m.graph!.output!.push(
        onnx.ValueInfoProto.create({ name: "f1", type: { tensorType: { elemType: 1 } } }),
      );
      return onnxEncode(m);
    };
    const fp32 = withF1(decodeModel(buildTinyModel(32, 24)));
    const smoothed = withF1(model);
    const evaluate = wasmEvaluator("pixels", [1, 3, 24, 32]);
    const x = Float32Array.from({ length: 3 * 24 * 32 }, (_, i) => Math.sin(i * 0.37));
    const a = await evaluate(fp32, x, ["logits", "f1"]);
    const b = await evaluate(smoothed, x, ["logits", "f1"]);
    for (let i = 0; i < 4; i++) {
      assert.ok(Math.abs(a.logits[i] - b.logits[i]) < 1e-5, `${a.logits[i]} vs ${b.logits[i]}`);
      // The connecting tensor itself is scaled per channel.
      const scale = [1, 3, 0.5, 7][i];
      assert.ok(Math.abs(b.f1[i] - a.f1[i] * scale) < 1e-5 * (1 + Math.abs(b.f1[i])));
    }
    // A model with an LRN between two layers has nothing to smooth there.
    const graph = decodeModel(buildTinyModel(32, 24)).graph!;
    graph.node![1] = { ...graph.node![1], opType: "LRN" };
    assert.deepEqual(smoothPairs(graph), []);
  },
});
