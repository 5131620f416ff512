/**
 * The pretrained AlexNets this server knows by name: the ONNX Model Zoo's
 * Caffe BVLC AlexNet in three encodings (pinned by sha256 and size, the
 * values of the zoo repository's Git LFS pointers), and a preset for
 * torchvision's AlexNet, which users export themselves. Each entry carries
 * the manifest that feeds it exactly as its published accuracy was measured.
 *
 * The manifests in models/ (`bvlcalexnet-12*.json`, `alexnet-torchvision.json`)
 * are {@linkcode zooManifest} written out; a test keeps them equal.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import type { PreprocessSpec } from "../image/preprocess_spec.ts";
import { type Manifest, TORCHVISION_PREPROCESSING } from "./manifest.ts";
import { MODELS_DIR } from "./store.ts";

/** A manifest with notes for people reading the file (ignored by the loader). */
export type ZooManifest = Manifest & { notes: string[] };

/** One model the server knows by name. */
export interface ZooEntry {
  /** Name users type (`deno task model:fetch bvlcalexnet-12-int8`), also the manifest's file name. */
  name: string;
  /** Short aliases (`int8`). */
  aliases: string[];
  /** The ONNX file in models/. */
  file: string;
  /** Size in bytes; absent when the user produces the file (torchvision export). */
  bytes?: number;
  /** Lower-case hex sha256; absent when the user produces the file. */
  sha256?: string;
  /** Weights precision, for the start-up order. */
  precision: "int8" | "fp32";
  /** Published ImageNet top-1 / top-5 accuracy in percent. */
  accuracy: { top1: number; top5: number };
  /** Where the weights come from, shown on the page and in /v1/models. */
  source: string;
  /** Licence of the weights. */
  license: string;
  /** Where `deno task model:fetch` looks, in order; the sha256 decides, never the URL. */
  urls: string[];
  /** How the server feeds it. */
  manifest: ZooManifest;
}

/**
 * The preprocessing behind the zoo AlexNet's published accuracy (Intel Neural
 * Compressor's evaluation script for this model): the RGB image resized to
 * 224x224 with no crop, per-channel mean subtracted (R 123.68, G 116.779,
 * B 103.939), no scaling by 1/255, channels then written B, G, R.
 *
 * @example
 * ```ts
 * ZOO_PREPROCESSING.channelOrder; // "BGR"
 * ```
 */
export const ZOO_PREPROCESSING: PreprocessSpec = {
  width: 224,
  height: 224,
  resize: { mode: "direct" },
  channelOrder: "BGR",
  scale: 1,
  mean: [123.68, 116.779, 103.939],
  std: [1, 1, 1],
};

/** Learned parameters of the BVLC AlexNet (the same graph as src/model/alexnet.ts). */
const BVLC_PARAMETERS = 60_965_224;
/** Learned parameters of torchvision's AlexNet (64-192-384-256-256, no LRN). */
const TORCHVISION_PARAMETERS = 61_100_840;

const ZOO_PAGE = "https://github.com/onnx/models/tree/main/validated/vision/classification/alexnet";

/**
 * Built-in mirrors of a zoo file, in the order they are tried.
 *
 * - Hugging Face, organisation onnxmodelzoo, one repository per file: where
 *   the zoo moved. The layout (`<org>/<name>/resolve/main/<name>.onnx`) is
 *   the one other projects use for these repositories (the int8 one is known
 *   at revision 99a443a03ecc3576ebd2d94aae33f8f5522b969c with this same
 *   sha256); it could not be checked from the machines this was written on.
 * - The zoo's GitHub LFS URL: it stopped serving on 2025-07-01 and is kept
 *   last only in case it returns; a failure there costs one request.
 *
 * Whatever answers, the file is used only if its size and sha256 match.
 */
function zooUrls(name: string): string[] {
  return [
    `https://huggingface.co/onnxmodelzoo/${name}/resolve/main/${name}.onnx`,
    `https://github.com/onnx/models/raw/main/validated/vision/classification/alexnet/model/${name}.onnx`,
  ];
}

function zooEntry(
  name: string,
  aliases: string[],
  pin: { sha256: string; bytes: number },
  precision: ZooEntry["precision"],
  accuracy: ZooEntry["accuracy"],
  encoding: string,
): ZooEntry {
  const license = "BSD-3-Clause";
  return {
    name,
    aliases,
    file: `${name}.onnx`,
    ...pin,
    precision,
    accuracy,
    source: ZOO_PAGE,
    license,
    urls: zooUrls(name),
    manifest: {
      name,
      model: `${name}.onnx`,
      input: { name: "data_0" },
      output: { name: "softmaxout_1", kind: "probabilities" },
      preprocessing: ZOO_PREPROCESSING,
      labels: "imagenet_labels.json",
      parameters: BVLC_PARAMETERS,
      precision,
      provenance: { kind: "pretrained", source: ZOO_PAGE, sha256: pin.sha256, license },
      notes: [
        `ONNX Model Zoo Caffe BVLC AlexNet, ${encoding}, opset 12; ImageNet top-1 ` +
        `${accuracy.top1}%, top-5 ${accuracy.top5}% as published.`,
        "Preprocessing as in Intel Neural Compressor's evaluation script for this model: RGB " +
        "resized to 224x224 (no crop), mean R 123.68 G 116.779 B 103.939 subtracted, no " +
        "1/255 scaling, channels ordered BGR, CHW. The script resizes with Pillow's default " +
        "filter (bicubic since Pillow 7); this server resizes with its antialiased bilinear " +
        "filter, so scores can differ slightly from the reference.",
        "The graph has a fixed batch of 1 (data_0 [1,3,224,224] -> softmaxout_1 [1,1000], " +
        "already softmax): larger batches run as a loop of single images over one session, " +
        "the file is not rewritten (it stays byte-identical to the pinned sha256).",
      ],
    },
  };
}

/** The models known by name, in start-up preference order (see {@linkcode PREFERENCE}). */
export const ZOO: readonly ZooEntry[] = [
  zooEntry(
    "bvlcalexnet-12-int8",
    ["int8"],
    {
      sha256: "d53bbedf100be79277cf55d78c72bdcb67d88786988561bf5d530f038e443c7b",
      bytes: 60_984_008,
    },
    "int8",
    { top1: 54.68, top5: 78.23 },
    "int8 QOperator (QLinear* operators) quantized by Intel Neural Compressor",
  ),
  zooEntry(
    "bvlcalexnet-12-qdq",
    ["qdq"],
    {
      sha256: "c103c0f7b8f9d8d64b400e0899d5934d2a13d1f08368ba1907285aa0691f4cbb",
      bytes: 61_009_072,
    },
    "int8",
    { top1: 54.71, top5: 78.22 },
    "int8 QDQ (QuantizeLinear/DequantizeLinear pairs) quantized by Intel Neural Compressor",
  ),
  {
    name: "alexnet-torchvision",
    aliases: ["torchvision"],
    file: "alexnet-torchvision.onnx",
    precision: "fp32",
    accuracy: { top1: 56.52, top5: 79.07 },
    source: "https://pytorch.org/vision/stable/models/generated/torchvision.models.alexnet.html",
    license: "BSD-3-Clause",
    urls: [],
    manifest: {
      name: "alexnet-torchvision",
      model: "alexnet-torchvision.onnx",
      input: { name: "input" },
      output: { name: "logits", kind: "logits" },
      preprocessing: TORCHVISION_PREPROCESSING,
      labels: "imagenet_labels.json",
      parameters: TORCHVISION_PARAMETERS,
      precision: "fp32",
      provenance: {
        kind: "user",
        source: "torchvision.models.alexnet(weights=AlexNet_Weights.IMAGENET1K_V1), " +
          "exported to ONNX by you (see README)",
      },
      notes: [
        "Torchvision's AlexNet (64-192-384-256-256 channels, no LRN; ImageNet top-1 56.52%, " +
        "top-5 79.07%): another graph than the zoo's. Export it yourself as " +
        "models/alexnet-torchvision.onnx with input 'input' [N,3,224,224] and output " +
        "'logits' [N,1000] (README shows the four lines of Python).",
        "Preprocessing as torchvision's weights.transforms(): resize the shorter side to 256 " +
        "(bilinear, antialiased), center crop 224, scale to [0,1], mean (0.485, 0.456, 0.406), " +
        "std (0.229, 0.224, 0.225), RGB.",
      ],
    },
  },
  zooEntry(
    "bvlcalexnet-12",
    ["fp32"],
    {
      sha256: "6b0da9510f27f234ee96a85dc3809dd210150fdefad87f6850f9788513216945",
      bytes: 243_863_787,
    },
    "fp32",
    { top1: 54.80, top5: 78.23 },
    "float32",
  ),
];

/**
 * Start-up preference among pretrained models present in models/: int8
 * before fp32 (a quarter of the download and memory, within 0.1 point of
 * top-1); among int8, QOperator before QDQ (runs its quantized kernels
 * directly); among fp32, the higher published top-1 (torchvision) first.
 * The synthetic AlexNet comes after all of them.
 */
export const PREFERENCE: readonly string[] = ZOO.map((e) => e.name);

/** The name of the model a first run fetches. */
export const DEFAULT_FETCH = "bvlcalexnet-12-int8";

/**
 * Looks an entry up by name or alias (`int8`, `qdq`, `fp32`, `torchvision`),
 * with or without `.onnx`/`.json`.
 *
 * @example
 * ```ts
 * findZooEntry("int8")?.file; // "bvlcalexnet-12-int8.onnx"
 * findZooEntry("my-model.onnx"); // undefined
 * ```
 */
export function findZooEntry(name: string): ZooEntry | undefined {
  const key = name.trim().toLowerCase().replace(/\.(onnx|json)$/, "");
  return ZOO.find((e) => e.name === key || e.aliases.includes(key));
}

/**
 * The manifest of an entry as written to models/ (a fresh copy).
 *
 * @example
 * ```ts
 * zooManifest(findZooEntry("int8")!).preprocessing.channelOrder; // "BGR"
 * ```
 */
export function zooManifest(entry: ZooEntry): ZooManifest {
  return structuredClone(entry.manifest);
}

/** The manifest as the JSON text in models/. */
export function zooManifestText(entry: ZooEntry): string {
  return JSON.stringify(zooManifest(entry), null, 2) + "\n";
}

/**
 * The entry a --model value names, if it is a name or alias rather than a
 * path (no slash, no `.onnx`).
 *
 * @example
 * ```ts
 * namedEntry("int8")?.name; // "bvlcalexnet-12-int8"
 * namedEntry("./int8.onnx"); // undefined
 * ```
 */
export function namedEntry(model: string): ZooEntry | undefined {
  return /[\\/]|\.onnx$/i.test(model.trim()) ? undefined : findZooEntry(model);
}

/**
 * Turns a --model value that names a model (`synthetic`, a zoo name or alias)
 * into the paths `loadClassifier` takes: `{}` for synthetic, the
 * files in `dir` for a zoo model, `undefined` for a path (left as is).
 *
 * @example
 * ```ts
 * resolveModelName("synthetic"); // { model: undefined, manifest: undefined }
 * resolveModelName("fp32"); // { model: ".../models/bvlcalexnet-12.onnx", manifest: ".../models/bvlcalexnet-12.json" }
 * ```
 */
export function resolveModelName(
  model: string | undefined,
  dir: URL = MODELS_DIR,
): { model?: string; manifest?: string } | undefined {
  if (model === undefined) return undefined;
  if (model.trim().toLowerCase() === "synthetic") return { model: undefined, manifest: undefined };
  const entry = namedEntry(model);
  if (!entry) return undefined;
  return {
    model: fileURLToPath(new URL(entry.file, dir)),
    manifest: fileURLToPath(new URL(`${entry.name}.json`, dir)),
  };
}
