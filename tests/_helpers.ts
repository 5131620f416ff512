/**
 * Shared test fixtures: the synthetic AlexNet classifier (loaded once per
 * test file) and a tiny user-style classifier with another input size.
 */
import { Classifier } from "../src/classify/mod.ts";
import { loadClassifier } from "../src/classify/load.ts";
import { encodeModel, floatTensor, floatValueInfo, node } from "../src/graph/onnx.ts";
import type { Manifest } from "../src/model/manifest.ts";
import { heUniform, mulberry32 } from "../src/graph/weights.ts";

/** A fixture file's bytes. */
export function fixture(name: string): Promise<Uint8Array<ArrayBuffer>> {
  return Deno.readFile(new URL(`./fixtures/${name}`, import.meta.url));
}

let synthetic: Promise<Classifier> | undefined;

/** The synthetic AlexNet (generated into models/ if missing), one session per test file. */
export function syntheticClassifier(): Promise<Classifier> {
  synthetic ??= loadClassifier({ seed: 1 });
  return synthetic;
}

/** Labels of the tiny model. */
export const TINY_LABELS = ["red", "green", "blue", "dark"];

/**
 * A tiny classifier over a `width` x `height` input, writing logits:
 * x: [N, 3, H, W] -> Conv 4@3x3/2 -> ReLU -> GlobalAveragePool -> Flatten -> Gemm 4 -> logits [N, 4].
 */
export function buildTinyModel(width: number, height: number): Uint8Array {
  const random = mulberry32(7);
  return encodeModel({
    name: "tiny",
    node: [
      node("Conv", ["pixels", "w1", "b1"], ["c1"], { kernel_shape: [3, 3], strides: [2, 2] }),
      node("Relu", ["c1"], ["r1"]),
      node("GlobalAveragePool", ["r1"], ["g1"]),
      node("Flatten", ["g1"], ["f1"], { axis: 1 }),
      node("Gemm", ["f1", "w2", "b2"], ["logits"], { transB: 1 }),
    ],
    initializer: [
      floatTensor("w1", [4, 3, 3, 3], heUniform(108, 27, random)),
      floatTensor("b1", [4], new Float32Array(4)),
      floatTensor("w2", [4, 4], heUniform(16, 4, random)),
      floatTensor("b2", [4], new Float32Array([0.1, -0.1, 0.2, 0])),
    ],
    input: [floatValueInfo("pixels", ["N", 3, height, width])],
    output: [floatValueInfo("logits", ["N", 4])],
  }, "alexnet-edge tests");
}

/** Writes the tiny model, its manifest and labels to a temp folder; returns their paths. */
export async function writeTinyModel(width = 64, height = 48) {
  const dir = await Deno.makeTempDir({ prefix: "alexnet-edge-tiny-" });
  const model = `${dir}/tiny.onnx`;
  const manifest = `${dir}/tiny.json`;
  const m: Manifest = {
    name: "tiny-user-model",
    model: "tiny.onnx",
    input: { name: "pixels" },
    output: { name: "logits", kind: "logits" },
    preprocessing: {
      width,
      height,
      resize: { mode: "direct" },
      channelOrder: "BGR",
      scale: 1,
      mean: [123.68, 116.779, 103.939],
      std: [58, 58, 58],
    },
    labels: "labels.txt",
    provenance: { kind: "user", source: "tests/_helpers.ts" },
  };
  await Deno.writeFile(model, buildTinyModel(width, height));
  await Deno.writeTextFile(manifest, JSON.stringify(m));
  await Deno.writeTextFile(`${dir}/labels.txt`, TINY_LABELS.join("\n") + "\n");
  return { dir, model, manifest };
}
