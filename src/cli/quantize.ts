/**
 * `deno task quantize`: post-training static int8 quantization of a model
 * (default: the synthetic AlexNet) calibrated on a folder of images.
 *
 *   deno task quantize [--manifest m.json] [--calibration DIR] [--method minmax|percentile]
 *                      [--percentile 99.999] [--weights gptq|nearest] [--smoothing 0]
 *                      [--weight-only Conv,Gemm|Gemm|none] [--name NAME]
 *
 * Writes <model>-int8.onnx (or NAME.onnx) and its manifest beside the source.
 * `--weight-only` names the layers (op types or node names) that keep float
 * inputs (our kernels round them to int16 per call); `none` writes uint8
 * activations everywhere, the layout of earlier releases.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { decodeImage, preprocess } from "../image/mod.ts";
import type { Manifest, QuantizationInfo } from "../model/manifest.ts";
import {
  type CalibrationMethod,
  DEFAULT_QUANTIZE,
  quantizeModel,
  type WeightRounding,
} from "../graph/mod.ts";
import { ensureSyntheticModel, loadModel } from "../model/store.ts";
import { wasmEvaluator } from "../runtime/evaluate.ts";

const USAGE = "Usage: deno task quantize [--manifest m.json] [--calibration DIR] " +
  "[--method minmax|percentile] [--percentile 99.999] [--weights gptq|nearest] [--smoothing 0] " +
  "[--weight-only Conv,Gemm|Gemm|none] [--name NAME]";

/** sha256 of bytes, hex. */
function sha256(...parts: (Uint8Array | string)[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

/** A one-line progress bar on stderr, redrawn in place on a terminal. */
function progress(label: string): (done: number, total: number, pass: string) => void {
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  return (done, total, pass) => {
    const width = 30, filled = Math.round((done / total) * width);
    const line = `${label} ${pass.padEnd(10)} [${"#".repeat(filled)}${
      "-".repeat(width - filled)
    }] ${done}/${total}`;
    if (tty) Deno.stderr.writeSync(enc.encode(`\r${line}${done === total ? "\n" : ""}`));
    else if (done === total || done % 10 === 0) Deno.stderr.writeSync(enc.encode(`${line}\n`));
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      manifest: { type: "string" },
      calibration: {
        type: "string",
        default: new URL("../../tests/fixtures/", import.meta.url).pathname,
      },
      method: { type: "string", default: "minmax" },
      percentile: { type: "string", default: "99.999" },
      weights: { type: "string", default: DEFAULT_QUANTIZE.weightRounding },
      smoothing: { type: "string", default: String(DEFAULT_QUANTIZE.smoothing) },
      "weight-only": { type: "string", default: DEFAULT_QUANTIZE.weightOnly.join(",") },
      name: { type: "string" },
    },
  });
  const method = values.method as CalibrationMethod;
  if (method !== "minmax" && method !== "percentile") {
    console.error(`Cannot use --method ${method}: expected minmax or percentile\n${USAGE}`);
    Deno.exit(2);
  }
  const weightRounding = values.weights as WeightRounding;
  if (weightRounding !== "gptq" && weightRounding !== "nearest") {
    console.error(`Cannot use --weights ${weightRounding}: expected gptq or nearest\n${USAGE}`);
    Deno.exit(2);
  }
  const smoothing = Number(values.smoothing);
  if (!(smoothing >= 0 && smoothing <= 1)) {
    console.error(
      `Cannot use --smoothing ${values.smoothing}: expected a number in [0, 1]\n${USAGE}`,
    );
    Deno.exit(2);
  }
  const weightOnly = values["weight-only"] === "none"
    ? []
    : values["weight-only"]!.split(",").map((s) => s.trim()).filter(Boolean);
  if (values.name !== undefined && !/^[\w.-]+$/.test(values.name)) {
    console.error(`Cannot use --name ${values.name}: expected letters, digits, . _ -\n${USAGE}`);
    Deno.exit(2);
  }
  const manifestUrl = values.manifest
    ? pathToFileURL(values.manifest)
    : await ensureSyntheticModel(1);
  const model = await loadModel(manifestUrl);
  const spec = model.manifest.preprocessing;

  // Calibration set: every image in the folder we can decode, in name order.
  const dir = values.calibration!.endsWith("/") ? values.calibration! : `${values.calibration}/`;
  const names = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(e.name);
  names.sort();
  const tensors: Float32Array[] = [];
  const hashParts: (Uint8Array | string)[] = [];
  for (const name of names) {
    const bytes = await Deno.readFile(dir + name);
    try {
      tensors.push(preprocess(await decodeImage(bytes, { fitFor: spec }), spec));
      hashParts.push(name, bytes);
    } catch {
      // Not an image we decode: not part of the calibration set.
    }
  }
  if (tensors.length === 0) {
    console.error(`Cannot calibrate: no decodable images in ${dir}`);
    Deno.exit(1);
  }

  const evaluate = wasmEvaluator(model.manifest.input.name, [1, 3, spec.height, spec.width]);
  const started = performance.now();
  const result = await quantizeModel(model.bytes, tensors, evaluate, {
    method,
    percentile: Number(values.percentile),
    weightRounding,
    smoothing,
    weightOnly,
    onProgress: progress("quantizing"),
  });

  const out = values.name ?? `${model.manifest.model.replace(/\.onnx$/i, "")}-int8`;
  const outModel = new URL(`${out}.onnx`, manifestUrl);
  const outManifest = new URL(`${out}.json`, manifestUrl);
  const quantization: QuantizationInfo = {
    format: "qdq",
    source_sha256: sha256(model.bytes),
    calibration_sha256: sha256(...hashParts),
    calibration_images: tensors.length,
    method,
    ...(method === "percentile" ? { percentile: Number(values.percentile) } : {}),
    activations: result.weightOnly.length === result.quantized.length
      ? "float"
      : "uint8 asymmetric per tensor",
    weights: "int8 symmetric per channel",
    ...(result.weightOnly.length > 0 ? { weight_only: result.weightOnly } : {}),
    weight_rounding: weightRounding,
    smoothing,
    bias_correction: true,
  };
  const manifest: Manifest = {
    ...model.manifest,
    name: values.name ?? `${model.manifest.name}-int8`,
    model: `${out}.onnx`,
    precision: "int8",
    quantization,
  };
  await Deno.writeFile(outModel, result.bytes);
  await Deno.writeTextFile(outManifest, JSON.stringify(manifest, null, 2) + "\n");
  console.error(
    `Quantized ${result.quantized.length} layers of ${model.manifest.name} on ${tensors.length} images ` +
      `(${method}, ${weightRounding} weights, smoothing ${smoothing}) in ${
        Math.round(performance.now() - started)
      } ms: ${outModel.pathname} ` +
      `(${(result.bytes.length / 1e6).toFixed(1)} MB, fp32 ${
        (model.bytes.length / 1e6).toFixed(1)
      } MB)`,
  );
  Deno.exit(0);
}
