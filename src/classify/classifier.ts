/**
 * The whole path for one request: bytes -> image -> tensor -> runtime ->
 * predictions, timing each stage.
 *
 * @module
 */
import { ClassifierError } from "../errors.ts";
import { decodeImage, preprocess } from "../image/mod.ts";
import type { Manifest, Precision, Provenance } from "../model/manifest.ts";
import type { LoadedModel } from "../model/store.ts";
import type { HostState } from "../host/mod.ts";
import type { Backend, BackendOutput } from "../runtime/backend.ts";
import { type Prediction, softmax, topK } from "./top_k.ts";
import { isWorkerBackend } from "./worker_backend.ts";

/** What a user sees about the weights: synthetic ones always carry a notice. */
export type WeightsInfo = Provenance & { notice?: string };

/** The answer for one image. */
export interface Classification {
  model: string;
  backend: string;
  weights: WeightsInfo;
  predictions: Prediction[];
  timings_ms: { decode: number; preprocess: number; inference: number; total: number };
}

/** The model as /v1/models describes it. */
export interface ModelInfo {
  name: string;
  input: { name: string; shape: (number | null)[]; datatype: "float32" };
  output: { name: string; kind: Manifest["output"]["kind"]; classes: number };
  preprocessing: Manifest["preprocessing"];
  parameters: number;
  /** Numeric precision, from the manifest (default: "int8" for models we quantized, else "fp32"). */
  precision: Precision;
  weights: WeightsInfo;
  backend: {
    name: string;
    threads: number;
    kernels: { lrn: "custom" | "ort"; int8: "custom" | "ort" };
  };
}

/** Describes the weights for users, adding the plain notice synthetic weights need. */
export function weightsInfo(provenance: Provenance): WeightsInfo {
  if (provenance.kind !== "synthetic") return { ...provenance };
  return {
    ...provenance,
    notice: `Synthetic weights (seed ${provenance.seed}): predictions are not meaningful. ` +
      "For real predictions run `deno task model:fetch`, then restart.",
  };
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/** A loaded model and its backend, classifying images. */
export class Classifier {
  readonly #manifest: Manifest;
  readonly #labels: string[];
  readonly #backend: Backend;
  readonly #weights: WeightsInfo;
  /** Static description for /v1/models. */
  readonly info: ModelInfo;

  /**
   * Pairs a loaded model with the backend running it. Checks the backend's
   * input shape against the manifest's input size.
   */
  constructor(model: LoadedModel, backend: Backend) {
    const { manifest } = model;
    const { width, height } = manifest.preprocessing;
    const [, c, h, w] = backend.inputShape;
    if (
      backend.inputShape.length !== 4 || (c !== null && c !== 3) ||
      (h !== null && h !== height) || (w !== null && w !== width)
    ) {
      throw new ClassifierError(
        "model_invalid",
        `Cannot use the model: its input is [${backend.inputShape.map((d) => d ?? "?")}], ` +
          `the manifest says [N, 3, ${height}, ${width}]`,
      );
    }
    this.#manifest = manifest;
    this.#labels = model.labels;
    this.#backend = backend;
    this.#weights = weightsInfo(manifest.provenance);
    this.info = {
      name: manifest.name,
      input: { name: manifest.input.name, shape: [null, 3, height, width], datatype: "float32" },
      output: { ...manifest.output, classes: model.labels.length },
      preprocessing: manifest.preprocessing,
      parameters: model.parameters,
      precision: manifest.precision ?? (manifest.quantization ? "int8" : "fp32"),
      weights: this.#weights,
      // Live: a backend can hand over to another while serving (webgpu -> wasm on a lost device).
      backend: {
        get name() {
          return backend.name;
        },
        get threads() {
          return backend.threads;
        },
        get kernels() {
          return backend.kernels;
        },
      },
    };
  }

  /** Number of classes (the largest useful top_k). */
  get classes(): number {
    return this.#labels.length;
  }

  /**
   * Why the backend cannot classify now (see Backend.failure): its Worker is
   * restarting, or it stopped for good; undefined when it can.
   */
  get failure(): string | undefined {
    return this.#backend.failure;
  }

  /**
   * Whether the classifier can serve: `ready`, `restarting` (an inference
   * Worker died or was stuck and a fresh one is starting; requests wait for
   * it within their deadlines) or `failed` (restart the server). `reason` is
   * a message for users when not ready. What /readyz reads.
   */
  get state(): HostState {
    if (isWorkerBackend(this.#backend)) return this.#backend.state;
    const reason = this.#backend.failure;
    return reason ? { status: "failed", reason } : { status: "ready" };
  }

  /**
   * Test and operator hook: terminates inference Worker `index` (default 0) and
   * lets the supervisor start a fresh one, as it does for a dead or stuck one.
   * False when the model does not run in Workers.
   */
  restartWorker(why = "was restarted by request", index = 0): boolean {
    if (!isWorkerBackend(this.#backend)) return false;
    this.#backend.restartWorker(index, why);
    return true;
  }

  /** Inference runs waiting or in progress on the backend. */
  get queueDepth(): number {
    return this.#backend.queueDepth;
  }

  /**
   * Classifies one encoded image (JPEG, PNG, GIF, WebP or BMP). `maxPixels`
   * bounds the image by its header (default `DEFAULT_MAX_PIXELS`); an aborted
   * `signal` stops the work before its next stage with the signal's reason.
   *
   * @example
   * ```ts
   * const result = await classifier.classify(await Deno.readFile("cat.jpg"), 5);
   * result.predictions[0].label;
   * ```
   */
  async classify(
    bytes: Uint8Array,
    k = 5,
    options: { maxPixels?: number; signal?: AbortSignal } = {},
  ): Promise<Classification> {
    const { maxPixels, signal } = options;
    const t0 = performance.now();
    const spec = this.#manifest.preprocessing;
    let scores: Float32Array, decode: number, prep: number;
    if (isWorkerBackend(this.#backend)) {
      // The Worker decodes and preprocesses where it runs, off this thread.
      signal?.throwIfAborted();
      const out = await this.#backend.classifyImage(bytes, { maxPixels, spec, signal });
      signal?.throwIfAborted();
      [scores] = this.#rows(out, 1);
      ({ decode, preprocess: prep } = out.timings);
    } else {
      // fitFor lets a large JPEG decode at 1/2..1/8 scale in the DCT domain.
      const image = await decodeImage(bytes, { maxPixels, fitFor: spec, signal });
      signal?.throwIfAborted();
      const t1 = performance.now();
      const tensor = preprocess(image, spec);
      signal?.throwIfAborted();
      const t2 = performance.now();
      [scores] = await this.infer(tensor, 1, { signal });
      decode = t1 - t0;
      prep = t2 - t1;
    }
    const total = performance.now() - t0;
    return {
      model: this.#manifest.name,
      backend: this.#backend.name,
      weights: this.#weights,
      predictions: topK(scores, k, this.#labels),
      timings_ms: {
        decode: round(decode),
        preprocess: round(prep),
        // The rest, waiting for the backend included, as on either path.
        inference: round(total - decode - prep),
        total: round(total),
      },
    };
  }

  /**
   * Decodes and preprocesses one image into x: [3, H, W] as the model takes it,
   * refusing it from its header when it is over `maxPixels`; in the inference
   * Worker when the model runs in Workers.
   */
  async prepareImage(
    bytes: Uint8Array,
    options: { maxPixels?: number; signal?: AbortSignal } = {},
  ): Promise<Float32Array> {
    const spec = this.#manifest.preprocessing;
    options.signal?.throwIfAborted();
    if (isWorkerBackend(this.#backend)) {
      const { maxPixels, signal } = options;
      const x = await this.#backend.prepareImage(bytes, { maxPixels, spec, signal });
      signal?.throwIfAborted();
      return x;
    }
    const { maxPixels, signal } = options;
    const image = await decodeImage(bytes, { maxPixels, fitFor: spec, signal });
    options.signal?.throwIfAborted();
    return preprocess(image, spec);
  }

  /**
   * Runs a preprocessed batch x: [N, 3, H, W] and returns N rows of
   * probabilities (softmax applied when the model outputs logits).
   */
  async infer(
    tensor: Float32Array,
    batch: number,
    options: { signal?: AbortSignal } = {},
  ): Promise<Float32Array[]> {
    return this.#rows(await this.inferRaw(tensor, batch, options), batch);
  }

  /** y: [N, K] as N rows of probabilities (softmax applied when the model outputs logits). */
  #rows(out: BackendOutput, batch: number): Float32Array[] {
    const classes = out.data.length / batch;
    const rows: Float32Array[] = [];
    for (let n = 0; n < batch; n++) {
      const row = out.data.subarray(n * classes, (n + 1) * classes);
      rows.push(this.#manifest.output.kind === "logits" ? softmax(row) : row);
    }
    return rows;
  }

  /**
   * Runs a preprocessed batch x: [N, 3, H, W] and returns the output y: [N, K]
   * as the graph writes it (logits stay logits), for the Open Inference Protocol.
   *
   * @example
   * ```ts
   * const { data, dims } = await classifier.inferRaw(new Float32Array(3 * 224 * 224), 1);
   * ```
   */
  inferRaw(
    tensor: Float32Array,
    batch: number,
    options: { signal?: AbortSignal } = {},
  ): Promise<BackendOutput> {
    const { width, height } = this.#manifest.preprocessing;
    options.signal?.throwIfAborted();
    return this.#backend.run(tensor, [batch, 3, height, width], { signal: options.signal });
  }

  /** Frees the backend. */
  release(): Promise<void> {
    return this.#backend.release();
  }
}
