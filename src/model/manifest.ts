/**
 * Model manifests: the JSON file beside each model that says how to feed it
 * and how to read its output, and where its weights came from. Validated once
 * when loaded, so the rest of the code can trust it.
 *
 * @module
 */
import type { PreprocessSpec } from "../image/preprocess_spec.ts";
import { ClassifierError } from "../errors.ts";

/** Where the weights came from. Synthetic weights carry no knowledge. */
export type Provenance =
  | { kind: "synthetic"; seed: number; generator: string }
  | { kind: "pretrained"; source: string; sha256: string; license?: string }
  | { kind: "user"; source: string; sha256?: string };

/** Numeric precisions a model can run in. */
export type Precision = "fp32" | "fp16" | "int8";

/**
 * The manifest of one model. Paths are relative to the manifest file and stay
 * inside its folder (see {@linkcode unconfinedReason}).
 */
export interface Manifest {
  /** Short model name shown to users, e.g. "alexnet-synthetic". */
  name: string;
  /** The ONNX file, relative to the manifest. */
  model: string;
  /** Graph input name; its shape is [N, 3, preprocessing.height, preprocessing.width]. */
  input: { name: string };
  /** Graph output name and whether it holds probabilities or logits (softmax then applied). */
  output: { name: string; kind: "probabilities" | "logits" };
  /** How an image becomes the input tensor. */
  preprocessing: PreprocessSpec;
  /** Class names: a JSON array of strings or a text file with one name per line. */
  labels: string;
  /** Learned parameter count, when known ahead of loading. */
  parameters?: number;
  /** Numeric precision of the weights and arithmetic (default "fp32"); shown in metrics and /v1/models. */
  precision?: Precision;
  /** Where the weights came from. */
  provenance: Provenance;
  /** For models we quantized: how (source hash, calibration set hash, method). */
  quantization?: QuantizationInfo;
}

/** How a quantized model was made from its fp32 source. */
export interface QuantizationInfo {
  /** QDQ: QuantizeLinear/DequantizeLinear pairs around float operators. */
  format: "qdq";
  /** sha256 of the fp32 source model file. */
  source_sha256: string;
  /** sha256 over the calibration images (sorted by name, each name and bytes). */
  calibration_sha256: string;
  /** Number of calibration images. */
  calibration_images: number;
  method: "minmax" | "percentile";
  percentile?: number;
  /**
   * The inputs of the layers not in `weight_only`; `float` when every layer is
   * weight-only (no QuantizeLinear in the file).
   */
  activations: "uint8 asymmetric per tensor" | "float";
  weights: "int8 symmetric per channel";
  /**
   * Layers (node names) with int8 weights and a float input: weight-only int8,
   * DequantizeLinear on the weights and no Q/DQ on the input, a float bias.
   * onnxruntime runs them in float on weights dequantized once at load; our kernels
   * round their input per call on its own range instead: to int16 for a Gemm, to a
   * grid of up to int16 that keeps int32 sums exact for a Conv (docs/int8.md).
   */
  weight_only?: string[];
  /** How weights were rounded: to nearest, or GPTQ's error-compensating order. */
  weight_rounding?: "nearest" | "gptq";
  /** Activation smoothing strength moved into the next layer's weights (0 = none). */
  smoothing?: number;
  /** Whether biases absorb the mean output shift quantization causes. */
  bias_correction?: boolean;
}

/** The preprocessing the synthetic model uses: torchvision's (shorter side 256, crop 224, mean/std). */
export const TORCHVISION_PREPROCESSING: PreprocessSpec = {
  width: 224,
  height: 224,
  resize: { mode: "shorter_side", size: 256 },
  channelOrder: "RGB",
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

function fail(where: string, message: string): never {
  throw new ClassifierError("model_invalid", `Cannot load manifest ${where}: ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function positiveInt(v: unknown): boolean {
  return Number.isInteger(v) && (v as number) > 0;
}

/**
 * Why `path` is not a plain relative path inside the manifest's folder, or
 * undefined when it is: no absolute path, URL, drive letter or backslash, no
 * `..` segment (spelled `%2e%2e` too: URL resolution reads that as `..`),
 * and no `?`, `#` or NUL that URL resolution would cut the path at.
 *
 * @example
 * ```ts
 * unconfinedReason("weights/model.onnx"); // undefined
 * unconfinedReason("../secret.onnx"); // "it climbs out of the manifest's folder (..)"
 * ```
 */
export function unconfinedReason(path: string): string | undefined {
  if (path === "") return "it is empty";
  if (/^[a-z][a-z0-9+.-]*:/i.test(path)) return "it is a URL or a drive path, not a relative path";
  if (path.startsWith("/") || path.includes("\\")) {
    return "it is absolute or uses backslashes; write it relative, with /";
  }
  if (/[?#]/.test(path) || path.includes("\0")) return "it contains ?, # or a NUL character";
  if (path.split("/").some((seg) => /^(\.|%2e){2}$/i.test(seg))) {
    return "it climbs out of the manifest's folder (..)";
  }
  return undefined;
}

function confined(where: string, field: string, path: string): void {
  const why = unconfinedReason(path);
  if (why) fail(where, `"${field}" must be a path inside the manifest's folder: ${why}`);
}

function triple(v: unknown): boolean {
  return Array.isArray(v) && v.length === 3 && v.every((x) => Number.isFinite(x));
}

/**
 * Checks an untrusted JSON value and returns it as a {@linkcode Manifest}.
 * `where` names the file in error messages.
 *
 * @example
 * ```ts
 * const manifest = parseManifest(JSON.parse(await Deno.readTextFile(path)), path);
 * ```
 */
export function parseManifest(json: unknown, where = "(inline)"): Manifest {
  if (!isObject(json)) fail(where, "it is not a JSON object");
  const { name, model, input, output, preprocessing: p, labels, provenance, parameters } = json;
  const { precision } = json;
  if (typeof name !== "string" || name === "") fail(where, '"name" must be a non-empty string');
  if (typeof model !== "string") fail(where, '"model" must be the path of the ONNX file');
  confined(where, "model", model);
  if (!isObject(input) || typeof input.name !== "string") fail(where, '"input.name" is missing');
  if (
    !isObject(output) || typeof output.name !== "string" ||
    (output.kind !== "probabilities" && output.kind !== "logits")
  ) fail(where, '"output" needs "name" and "kind" ("probabilities" or "logits")');
  if (!isObject(p)) fail(where, '"preprocessing" is missing');
  if (!positiveInt(p.width) || !positiveInt(p.height)) {
    fail(where, '"preprocessing.width" and "height" must be positive integers');
  }
  const r = p.resize;
  if (
    !isObject(r) ||
    !(r.mode === "direct" || (r.mode === "shorter_side" && positiveInt(r.size)))
  ) {
    fail(
      where,
      '"preprocessing.resize" must be {"mode":"direct"} or {"mode":"shorter_side","size":N}',
    );
  }
  if (
    r.mode === "shorter_side" &&
    (r.size as number) < Math.min(p.width as number, p.height as number)
  ) {
    fail(where, '"preprocessing.resize.size" must be at least the input width and height');
  }
  if (p.channelOrder !== "RGB" && p.channelOrder !== "BGR") {
    fail(where, '"preprocessing.channelOrder" must be "RGB" or "BGR"');
  }
  if (!Number.isFinite(p.scale) || !triple(p.mean) || !triple(p.std)) {
    fail(where, '"preprocessing" needs a numeric "scale" and 3-element "mean" and "std"');
  }
  if ((p.std as number[]).some((s) => s === 0)) fail(where, '"preprocessing.std" must not be 0');
  if (typeof labels !== "string") fail(where, '"labels" must be the path of the labels file');
  confined(where, "labels", labels);
  if (precision !== undefined && !["fp32", "fp16", "int8"].includes(precision as string)) {
    fail(where, '"precision" must be "fp32", "fp16" or "int8"');
  }
  if (parameters !== undefined && !positiveInt(parameters)) {
    fail(where, '"parameters" must be a positive integer');
  }
  if (
    !isObject(provenance) ||
    !["synthetic", "pretrained", "user"].includes(provenance.kind as string)
  ) fail(where, '"provenance.kind" must be "synthetic", "pretrained" or "user"');
  return json as unknown as Manifest;
}

/**
 * Parses a labels file: a JSON array of strings, or plain text with one label per line.
 *
 * @example
 * ```ts
 * parseLabels('["cat","dog"]'); // ["cat", "dog"]
 * ```
 */
export function parseLabels(text: string, where = "(inline)"): string[] {
  const trimmed = text.trim();
  if (trimmed.startsWith("[")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new ClassifierError("model_invalid", `Cannot read labels ${where}: invalid JSON`);
    }
    if (!Array.isArray(parsed) || !parsed.every((l) => typeof l === "string")) {
      throw new ClassifierError("model_invalid", `Cannot read labels ${where}: expected strings`);
    }
    return parsed;
  }
  return trimmed.split(/\r?\n/).map((l) => l.trim());
}
