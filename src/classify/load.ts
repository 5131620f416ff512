/**
 * Start-up: from configuration to a ready {@linkcode Classifier}.
 *
 * @module
 */
import { pathToFileURL } from "node:url";
import { ClassifierError } from "../errors.ts";
import { ensureSyntheticModel, loadModel } from "../model/store.ts";
import { createWasmBackend } from "../runtime/wasm.ts";
import { Classifier } from "./classifier.ts";

/** Which model to load and how to run it. */
export interface LoadOptions {
  /** ONNX file of a user's own model; absent means the synthetic AlexNet. */
  model?: string;
  /** Its manifest (default: the model path with the extension .json). */
  manifest?: string;
  /** Seed of the synthetic weights. */
  seed?: number;
  /** Intra-op threads. */
  threads?: number;
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
    manifestUrl = await ensureSyntheticModel(options.seed ?? 1, undefined, log);
  }
  const model = await loadModel(manifestUrl, modelUrl);
  const backend = await createWasmBackend(model.bytes, {
    inputName: model.manifest.input.name,
    outputName: model.manifest.output.name,
    threads: options.threads,
  });
  try {
    return new Classifier(model, backend);
  } catch (e) {
    await backend.release();
    throw e;
  }
}
