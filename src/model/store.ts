/**
 * Finding, generating and loading models on disk: the synthetic AlexNet is
 * generated into models/ on first use (it is git-ignored), any other model is
 * read through its manifest.
 *
 * @module
 */
import { ClassifierError } from "../errors.ts";
import { ALEXNET_INPUT, ALEXNET_OUTPUT, ALEXNET_PARAMETERS } from "./alexnet_io.ts";
import {
  cachedSha256,
  type FileStamp,
  rememberSha256,
  sameStamp,
  type Sha256,
  sha256Of,
  stampOf,
} from "./sha256_cache.ts";
import {
  type Manifest,
  parseLabels,
  parseManifest,
  TORCHVISION_PREPROCESSING,
} from "./manifest.ts";
// Bundled with the code, so a model built or fetched into memory needs no file (edge runtimes).
import IMAGENET_LABELS from "../../models/imagenet_labels.json" with { type: "json" };

/** The folder holding manifests, labels and generated or fetched weights. */
export const MODELS_DIR: URL = new URL("../../models/", import.meta.url);

/** A manifest is a page of JSON; anything much larger is not one. */
const MAX_MANIFEST_BYTES = 1024 * 1024;

/** File name (without extension) of the synthetic model. */
export const SYNTHETIC_NAME = "alexnet-synthetic";

/** A model read from disk, ready to hand to a backend. */
export interface LoadedModel {
  manifest: Manifest;
  /** Where the manifest was read from. */
  manifestUrl: URL;
  /** Serialized ONNX graph. Callers should drop it once a session holds the model. */
  bytes: Uint8Array;
  labels: string[];
  /** Learned parameters: from the manifest, else counted from the initializers. */
  parameters: number;
}

/**
 * The manifest of the synthetic AlexNet for a seed.
 *
 * @example
 * ```ts
 * syntheticManifest(1).provenance; // { kind: "synthetic", seed: 1, ... }
 * ```
 */
export function syntheticManifest(seed: number): Manifest {
  return {
    name: SYNTHETIC_NAME,
    model: `${SYNTHETIC_NAME}.onnx`,
    input: { name: ALEXNET_INPUT },
    output: { name: ALEXNET_OUTPUT, kind: "probabilities" },
    preprocessing: TORCHVISION_PREPROCESSING,
    labels: "imagenet_labels.json",
    parameters: ALEXNET_PARAMETERS,
    provenance: { kind: "synthetic", seed, generator: "alexnet-edge src/model/alexnet.ts" },
  };
}

/** Writes a file via a temporary sibling and a rename, so readers never see half a model. */
async function writeAtomic(url: URL, data: Uint8Array | string): Promise<void> {
  const tmp = new URL(`${url.href}.${crypto.randomUUID()}.partial`);
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, url);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** The manifest at `url`, or undefined when it is missing, a link or invalid. */
async function readManifestFile(url: URL): Promise<Manifest | undefined> {
  try {
    if (!(await Deno.lstat(url)).isFile) return undefined;
    return parseManifest(JSON.parse(await Deno.readTextFile(url)), url.pathname);
  } catch {
    return undefined;
  }
}

/**
 * Makes sure the synthetic model for `seed` exists in `dir`, generating it
 * (about 244 MB, a few seconds) when it is missing or was built with another
 * seed. Returns the manifest's URL.
 *
 * @example
 * ```ts
 * const manifestUrl = await ensureSyntheticModel();
 * ```
 */
export async function ensureSyntheticModel(
  seed = 1,
  dir: URL = MODELS_DIR,
  log: (line: string) => void = () => {},
): Promise<URL> {
  const manifestUrl = new URL(`${SYNTHETIC_NAME}.json`, dir);
  const modelUrl = new URL(`${SYNTHETIC_NAME}.onnx`, dir);
  const existing = await readManifestFile(manifestUrl);
  // lstat: a symbolic link is not the model; the atomic write below replaces the link itself.
  const haveModel = await Deno.lstat(modelUrl).then((s) => s.isFile, () => false);
  if (
    haveModel && existing?.provenance.kind === "synthetic" && existing.provenance.seed === seed
  ) return manifestUrl;
  log(`Generating the synthetic AlexNet (seed ${seed}) into ${modelUrl.pathname}`);
  await Deno.mkdir(dir, { recursive: true });
  const { buildAlexNet } = await import("./alexnet.ts");
  await writeAtomic(modelUrl, buildAlexNet({ seed }));
  await writeAtomic(manifestUrl, JSON.stringify(syntheticManifest(seed), null, 2) + "\n");
  return manifestUrl;
}

/**
 * The ImageNet class names of models/imagenet_labels.json, without reading a
 * file (the JSON is imported with the code).
 *
 * @example
 * ```ts
 * imagenetLabels().length; // 1000
 * ```
 */
export function imagenetLabels(): string[] {
  return parseLabels(JSON.stringify(IMAGENET_LABELS), "models/imagenet_labels.json");
}

/**
 * The synthetic AlexNet for `seed` built in memory, nothing written: for a
 * read-only filesystem (edge runtimes). Building takes a few seconds of CPU.
 *
 * @example
 * ```ts
 * const model = await syntheticModel(1);
 * model.bytes.length; // about 244 MB
 * ```
 */
export async function syntheticModel(seed = 1): Promise<LoadedModel> {
  // The builder and the ONNX code it brings load only here, not at every server's start.
  const { buildAlexNet } = await import("./alexnet.ts");
  return {
    manifest: syntheticManifest(seed),
    manifestUrl: new URL(`${SYNTHETIC_NAME}.json`, MODELS_DIR),
    bytes: buildAlexNet({ seed }),
    labels: imagenetLabels(),
    parameters: ALEXNET_PARAMETERS,
  };
}

/**
 * Whether an error says the filesystem cannot be written: no write
 * permission (Deno's NotCapable or PermissionDenied) or a read-only mount.
 *
 * @example
 * ```ts
 * isReadOnlyError(new Deno.errors.NotCapable("Requires write access")); // true
 * ```
 */
export function isReadOnlyError(e: unknown): boolean {
  return e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied ||
    /read-only file system|os error 30\b/i.test((e as Error)?.message ?? "");
}

/**
 * Counts learned parameters in an ONNX model: the elements of its
 * initializers, leaving out scalars and int64 tensors (shapes, indices).
 *
 * @example
 * ```ts
 * import { buildAlexNet } from "./alexnet.ts";
 *
 * await countParameters(buildAlexNet()); // 60965224
 * ```
 */
export async function countParameters(bytes: Uint8Array): Promise<number> {
  // The ONNX decoder loads only for a manifest that does not say (ours all do).
  const { decodeModel } = await import("../graph/onnx.ts");
  const INT64 = 7;
  let total = 0;
  for (const t of decodeModel(bytes).graph?.initializer ?? []) {
    if (t.dataType === INT64) continue;
    const n = (t.dims ?? []).reduce((a: number, d) => a * Number(d), 1);
    if (n > 1) total += n;
  }
  return total;
}

/** A file read whole, with its stamp from before and after the read. */
interface ReadFile {
  bytes: Uint8Array;
  before: FileStamp;
  after: FileStamp;
}

/**
 * Refuses what a manifest or --model must not lead the server to: a symbolic
 * link (a file in models/ that points elsewhere), anything but a regular file,
 * and, for paths taken from a manifest, a file whose real path is outside the
 * manifest's folder (a linked subfolder). Returns the lstat result.
 */
async function regularFile(url: URL, what: string, inside?: URL): Promise<Deno.FileInfo> {
  const info = await Deno.lstat(url);
  if (info.isSymlink) {
    throw new TypeError(`it is a symbolic link; put the ${what} itself there`);
  }
  if (!info.isFile) throw new TypeError("it is not a regular file");
  if (inside) {
    const [real, folder] = await Promise.all([Deno.realPath(url), Deno.realPath(inside)]);
    if (!real.startsWith(folder.endsWith("/") ? folder : `${folder}/`)) {
      throw new TypeError("it resolves outside the manifest's folder (a linked folder)");
    }
  }
  return info;
}

/**
 * Reads a whole file into one buffer of its size. Deno.readFile grows its buffer
 * while reading and copies it at the end: twice a model's size at the peak (measured:
 * +57 MB of peak RSS for the 61 MB int8 AlexNet). `checked` is the file's lstat: the
 * handle opened must be that file (not a link swapped in since).
 */
async function readSized(url: URL, checked: Deno.FileInfo): Promise<ReadFile> {
  using file = await Deno.open(url);
  const opened = await file.stat();
  if (!opened.isFile || (checked.ino !== null && opened.ino !== checked.ino)) {
    throw new TypeError("it changed while being opened");
  }
  const size = opened.size;
  const bytes = new Uint8Array(size);
  let at = 0;
  while (at < size) {
    const n = await file.read(bytes.subarray(at));
    if (n === null) break;
    at += n;
  }
  const after = stampOf(await file.stat());
  // A file that shrank while being read keeps what was there; one that grew is cut.
  return { bytes: at === size ? bytes : bytes.subarray(0, at), before: stampOf(opened), after };
}

/** The sha256 a manifest pins its model to, if any. */
export function pinnedSha256(manifest: Manifest): string | undefined {
  const { provenance } = manifest;
  return provenance.kind !== "synthetic" && typeof provenance.sha256 === "string"
    ? provenance.sha256.toLowerCase()
    : undefined;
}

/**
 * Refuses model bytes that do not hash to the sha256 their manifest pins, so
 * that no pinned hash is ever reported for bytes that were not hashed. A file
 * whose stamp is in the sha256 cache is not hashed again (fast restarts).
 */
async function checkPin(
  manifest: Manifest,
  modelUrl: URL,
  read: ReadFile,
  sha256: Sha256,
): Promise<void> {
  const pinned = pinnedSha256(manifest);
  if (!pinned) return;
  const unchanged = sameStamp(read.before, read.after);
  if (unchanged && (await cachedSha256(modelUrl, read.before)) === pinned) return;
  const actual = await sha256(read.bytes);
  if (actual !== pinned) {
    const file = modelUrl.pathname.slice(modelUrl.pathname.lastIndexOf("/") + 1);
    throw new ClassifierError(
      "model_invalid",
      `Cannot load ${manifest.name}: ${modelUrl.pathname} does not match the sha256 its ` +
        `manifest pins (expected ${pinned.slice(0, 12)}…, got ${actual.slice(0, 12)}…); ` +
        `replace ${file} (\`deno task model:fetch ${manifest.name}\` for a zoo model) or fix ` +
        "the manifest",
    );
  }
  if (unchanged) await rememberSha256(modelUrl, read.before, actual);
}

/** Options of {@linkcode loadModel}. */
export interface LoadModelOptions {
  /** The hash for pinned models not in the sha256 cache (default node:crypto's). */
  sha256?: Sha256;
}

/** Resolves a path from a manifest, which parseManifest has confined to its folder. */
function fromManifest(path: string, manifestUrl: URL): URL {
  const url = new URL(path, manifestUrl);
  if (!url.href.startsWith(new URL(".", manifestUrl).href)) {
    throw new ClassifierError(
      "model_invalid",
      `Cannot load manifest ${manifestUrl.pathname}: ${path} is outside its folder`,
    );
  }
  return url;
}

/**
 * Reads a manifest, its model and its labels. Relative paths resolve against
 * the manifest's folder and must stay in it; none of the files may be a
 * symbolic link. A model whose manifest pins a sha256 is refused unless its
 * bytes hash to it (checked once per file version, see sha256_cache.ts).
 *
 * @example
 * ```ts
 * const model = await loadModel(await ensureSyntheticModel());
 * ```
 */
export async function loadModel(
  manifestUrl: URL,
  modelOverride?: URL,
  options: LoadModelOptions = {},
): Promise<LoadedModel> {
  let text: string;
  try {
    const info = await regularFile(manifestUrl, "manifest");
    if (info.size > MAX_MANIFEST_BYTES) {
      throw new RangeError(`it is over ${MAX_MANIFEST_BYTES} bytes`);
    }
    text = await Deno.readTextFile(manifestUrl);
  } catch (e) {
    throw new ClassifierError(
      "model_invalid",
      `Cannot read manifest ${manifestUrl.pathname}: ${(e as Error).message}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ClassifierError(
      "model_invalid",
      `Cannot load manifest ${manifestUrl.pathname}: invalid JSON`,
    );
  }
  const manifest = parseManifest(json, manifestUrl.pathname);
  const folder = new URL(".", manifestUrl);
  const modelUrl = modelOverride ?? fromManifest(manifest.model, manifestUrl);
  const labelsUrl = fromManifest(manifest.labels, manifestUrl);
  const [read, labelsText] = await Promise.all([
    regularFile(modelUrl, "model", modelOverride ? undefined : folder)
      .then((info) => readSized(modelUrl, info))
      .catch((e) => {
        throw new ClassifierError(
          "model_invalid",
          `Cannot read model ${modelUrl.pathname}: ${e.message}`,
        );
      }),
    regularFile(labelsUrl, "labels file", folder)
      .then(() => Deno.readTextFile(labelsUrl))
      .catch((e) => {
        throw new ClassifierError(
          "model_invalid",
          `Cannot read labels ${labelsUrl.pathname}: ${e.message}`,
        );
      }),
  ]);
  await checkPin(manifest, modelUrl, read, options.sha256 ?? sha256Of);
  const { bytes } = read;
  const labels = parseLabels(labelsText, labelsUrl.pathname);
  let parameters = manifest.parameters;
  if (parameters === undefined) {
    try {
      parameters = await countParameters(bytes);
    } catch {
      throw new ClassifierError(
        "model_invalid",
        `Cannot parse model ${modelUrl.pathname}: not an ONNX file`,
      );
    }
  }
  return { manifest, manifestUrl, bytes, labels, parameters };
}
