/**
 * Start-up: from configuration to a ready {@linkcode Classifier}.
 *
 * @module
 */
import { pathToFileURL } from "node:url";
import { ClassifierError } from "../errors.ts";
import {
  ensureSyntheticModel,
  isReadOnlyError,
  type LoadedModel,
  loadModel,
  syntheticModel,
} from "../model/store.ts";
import { resolveModelName } from "../model/zoo.ts";
import { loopFixedBatch } from "../runtime/fixed_batch.ts";
import { type BackendRequest, createBackend } from "../runtime/select.ts";
import type { Int8Mode, LrnMode } from "../runtime/custom_ops.ts";
import { Classifier } from "./classifier.ts";

/** Which model to load and how to run it. */
export interface LoadOptions {
  /** ONNX file of a user's own model; absent means the synthetic AlexNet. */
  model?: string;
  /** Its manifest (default: the model path with the extension .json). */
  manifest?: string;
  /** Seed of the synthetic weights. */
  seed?: number;
  /** Which backend runs the model (default auto, see backendOrder). */
  backend?: BackendRequest;
  /** Intra-op threads. */
  threads?: number;
  /** wasm: that many single-threaded sessions in Workers instead of one session (0: one). */
  workers?: number;
  /** wasm, one session: run it in one dedicated Worker (see BackendOptions.inferenceWorker). */
  inferenceWorker?: boolean;
  /** Who runs LRN (default: the faster, see DEFAULT_LRN). */
  lrn?: LrnMode;
  /** Who runs quantized Gemm layers (default: ours, see DEFAULT_INT8). */
  int8?: Int8Mode;
  /** Start-up progress lines. */
  log?: (line: string) => void;
}

/**
 * Finds (or generates) the model, reads it, and creates its session.
 *
 * @example
 * ```ts
 * const classifier = await loadClassifier({ threads: 2 });
 * ```
 */
export async function loadClassifier(options: LoadOptions = {}): Promise<Classifier> {
  const log = options.log ?? (() => {});
  // "synthetic" and zoo names ("bvlcalexnet-12-int8", "int8") become paths in models/.
  options = { ...options, ...resolveModelName(options.model) };
  let manifestUrl: URL;
  let modelUrl: URL | undefined;
  if (options.model) {
    modelUrl = pathToFileURL(options.model);
    const manifest = options.manifest ?? options.model.replace(/\.onnx$/i, "") + ".json";
    manifestUrl = pathToFileURL(manifest);
    if (!options.manifest && !(await Deno.stat(manifestUrl).then(() => true, () => false))) {
      throw new ClassifierError(
        "model_invalid",
        `Cannot serve ${options.model}: no manifest given; pass --manifest (or MODEL_MANIFEST) ` +
          `or put one at ${manifest}`,
      );
    }
  } else {
    try {
      manifestUrl = await ensureSyntheticModel(options.seed ?? 1, undefined, log);
    } catch (e) {
      if (!isReadOnlyError(e)) throw e;
      // An edge runtime's read-only filesystem: the model lives in memory only.
      log(
        `Cannot write models/ (${(e as Error).message}): building the synthetic AlexNet in memory`,
      );
      return await classifierFromModel(syntheticModel(options.seed ?? 1), options);
    }
  }
  return await classifierFromModel(await loadModel(manifestUrl, modelUrl), options);
}

/**
 * Creates the session for a model already in memory (read from disk, built,
 * or fetched at cold start) and wraps it in a {@linkcode Classifier}.
 *
 * @example
 * ```ts
 * const classifier = await classifierFromModel(syntheticModel(1), { threads: 1 });
 * ```
 */
export async function classifierFromModel(
  model: LoadedModel,
  options: Omit<LoadOptions, "model" | "manifest" | "seed"> = {},
): Promise<Classifier> {
  const log = options.log ?? (() => {});
  const backend = await createBackend(model.bytes, {
    backend: options.backend,
    log,
    inputName: model.manifest.input.name,
    outputName: model.manifest.output.name,
    threads: options.threads,
    workers: options.workers,
    inferenceWorker: options.inferenceWorker,
    lrn: options.lrn,
    int8: options.int8,
    // The sessions and kernels hold what they need: give the model's memory back now.
    releaseModel: true,
  });
  try {
    // Graphs with a fixed batch of 1 (the zoo files) run larger batches as a loop.
    return new Classifier(model, loopFixedBatch(backend));
  } catch (e) {
    await backend.release();
    throw e;
  }
}
