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
import type { Logger, LogLevel } from "../log.ts";
import { loopFixedBatch } from "../runtime/fixed_batch.ts";
import {
  backendFactories,
  type BackendOptions,
  type BackendRequest,
  createBackend,
} from "../runtime/select.ts";
import type { Backend } from "../runtime/backend.ts";
import type { Int8Mode, LrnMode } from "../runtime/custom_ops.ts";
import { hasWorkers } from "../host/mod.ts";
import { availableCores } from "../runtime/backend.ts";
import { Classifier } from "./classifier.ts";
import { createWorkerBackend, EarlyWorker, isWorkerBackend } from "./worker_backend.ts";

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
  /**
   * wasm, one session: run it, and the image decode, in one dedicated Worker off the
   * caller's thread. Default false: the caller's thread, as on a platform without
   * Workers. A Worker that cannot be created falls back to the caller's thread, logged.
   */
  inferenceWorker?: boolean;
  /** Who runs LRN (default: the faster, see DEFAULT_LRN). */
  lrn?: LrnMode;
  /** Who runs quantized Gemm layers (default: ours, see DEFAULT_INT8). */
  int8?: Int8Mode;
  /** Start-up progress lines. */
  log?: (line: string) => void;
  /**
   * Where the inference Workers' log lines (with their level and fields) and their
   * restarts are written (default: their messages go to `log`).
   */
  logger?: Logger;
  /** Reads the model again, for a Worker that replaces one that died (see WorkerBackendOptions). */
  reload?: () => Promise<Uint8Array>;
  /** An inference Worker already started, to run the model in (see EarlyWorker). */
  early?: EarlyWorker;
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
      return await classifierFromModel(await syntheticModel(options.seed ?? 1), options);
    }
  }
  const reload = () => loadModel(manifestUrl, modelUrl).then((m) => m.bytes);
  // The model's Worker loads its modules on its own thread while this one reads the file.
  const early = options.early ?? startEarly(options);
  try {
    const model = await loadModel(manifestUrl, modelUrl);
    return await classifierFromModel(model, { reload, ...options, early });
  } finally {
    early?.close();
  }
}

/** The inference Worker started ahead, where the model will run in Workers on wasm. */
function startEarly(options: LoadOptions): EarlyWorker | undefined {
  const inWorkers = options.workers || options.inferenceWorker;
  const backend = options.backend ?? "auto";
  if (!inWorkers || (backend !== "wasm" && backend !== "auto") || !hasWorkers()) return undefined;
  // One session in its Worker gets the asked threads (its helpers start here too); a pool's
  // Workers one each.
  return new EarlyWorker(options.workers ? 1 : options.threads ?? availableCores());
}

/**
 * Creates the session for a model already in memory (read from disk, built,
 * or fetched at cold start) and wraps it in a {@linkcode Classifier}.
 *
 * @example
 * ```ts
 * const classifier = await classifierFromModel(await syntheticModel(1), { threads: 1 });
 * ```
 */
export async function classifierFromModel(
  model: LoadedModel,
  options: Omit<LoadOptions, "model" | "manifest" | "seed"> = {},
): Promise<Classifier> {
  const log = options.log ?? (() => {});
  const backendOptions: BackendOptions = {
    backend: options.backend,
    log,
    inputName: model.manifest.input.name,
    outputName: model.manifest.output.name,
    threads: options.threads,
    lrn: options.lrn,
    int8: options.int8,
    // The sessions and kernels hold what they need: give the model's memory back now.
    releaseModel: true,
  };
  const wasm = (bytes: Uint8Array, o: BackendOptions) => wasmBackend(bytes, o, options);
  const backend = await createBackend(model.bytes, backendOptions, backendFactories(wasm));
  try {
    // Graphs with a fixed batch of 1 (the zoo files) run larger batches as a loop (in the
    // Worker, for a backend in Workers).
    return new Classifier(model, isWorkerBackend(backend) ? backend : loopFixedBatch(backend));
  } catch (e) {
    await backend.release();
    throw e;
  }
}

/**
 * The wasm backend on this thread, its module imported on first use: a server whose model
 * runs in a Worker never loads it (nor onnxruntime-web, nor the graph code) on its own thread.
 * Its helper threads start with it (`eagerThreads`): from this thread they start in tens of
 * ms, and a deferred start packs the weights a second time while the first set still serves.
 */
async function createWasmBackend(model: Uint8Array, options: BackendOptions): Promise<Backend> {
  const wasm = await import("../runtime/wasm.ts");
  return await wasm.createWasmBackend(model, { ...options, eagerThreads: true });
}

/** A logger writing each line's message to `log` (for callers that only pass `log`). */
function lineLogger(log: (line: string) => void): Logger {
  const write = (_level: LogLevel, msg: string) => log(msg);
  return {
    level: "info",
    enabled: (level) => level !== "debug",
    log: write,
    debug: () => {},
    info: (msg) => log(msg),
    warn: (msg) => log(msg),
    error: (msg) => log(msg),
  };
}

/**
 * The wasm backend as asked: `workers` single-threaded sessions in a pool of
 * Workers, one session in one inference Worker, or one on this thread.
 */
async function wasmBackend(
  model: Uint8Array,
  options: BackendOptions,
  load: Omit<LoadOptions, "model" | "manifest" | "seed">,
): Promise<Backend> {
  const log = options.log ?? (() => {});
  const inWorkers = {
    ...options,
    logger: load.logger ?? lineLogger(log),
    reload: load.reload,
    early: load.early,
  };
  if (load.workers) {
    return await createWorkerBackend(model, { ...inWorkers, workers: load.workers });
  }
  if (!load.inferenceWorker) return await createWasmBackend(model, options);
  try {
    if (!hasWorkers()) throw new TypeError("this runtime has no Worker API");
    const backend = await createWorkerBackend(model, {
      ...inWorkers,
      threadsPerWorker: options.threads,
    });
    log(`Inference and image decoding run in one dedicated Worker (${backend.threads} threads)`);
    return backend;
  } catch (e) {
    const buffer = model.buffer;
    if (e instanceof ClassifierError || (buffer instanceof ArrayBuffer && buffer.detached)) throw e;
    log(`Cannot start the inference Worker: ${(e as Error).message}; running on this thread`);
    return await createWasmBackend(model, options);
  }
}
