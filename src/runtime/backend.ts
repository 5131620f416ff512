/**
 * The one contract every inference backend (wasm, webgpu, native) meets.
 *
 * @module
 */
import type { PreprocessSpec } from "../image/mod.ts";

/** What a backend needs to know about the graph it runs. */
export interface GraphIo {
  /** Input tensor name; input is float32 [N, C, H, W]. */
  inputName: string;
  /** Output tensor name; output is float32 [N, K]. */
  outputName: string;
}

/** Result of one batch: row-major [N, K] scores. */
export interface BackendOutput {
  data: Float32Array;
  dims: readonly number[];
}

/** A loaded model that can run batches. */
export interface Backend {
  /** Backend name as users see it ("wasm", ...). */
  readonly name: string;
  /** Intra-op threads the backend runs with. */
  readonly threads: number;
  /** Input dims the graph declares; symbolic dims are null. */
  readonly inputShape: readonly (number | null)[];
  /** Which implementation runs each custom-capable op ("custom" = ours, "ort" = onnxruntime's). */
  readonly kernels: { lrn: "custom" | "ort"; int8: "custom" | "ort" };
  /** Runs waiting or in progress. */
  readonly queueDepth: number;
  /**
   * Set once the backend can no longer run anything (every worker of a pool
   * stopped): why, as a message for users. /readyz then answers 503.
   */
  readonly failure?: string;
  /** Runs x: [N, C, H, W] and returns y: [N, K]. Safe to call concurrently. */
  run(input: Float32Array, dims: readonly number[]): Promise<BackendOutput>;
  /**
   * Runs x and returns the tensors passed between the model's parts (the
   * outputs of the layers around our kernels), copied.
   */
  capture(input: Float32Array, dims: readonly number[]): Promise<Record<string, BackendOutput>>;
  /**
   * Optional: decodes one encoded image (within `maxPixels`, for `spec`),
   * preprocesses it and runs it as x: [1, 3, H, W] where the backend runs
   * (the worker pool: in a Worker, off the caller's thread); returns y: [1, K]
   * and the decode and preprocess times in ms. Decode errors reject with the
   * same `ClassifierError` (code and message) as decoding on the caller's thread.
   * Without it, Classifier.classify decodes and preprocesses itself. A call
   * still waiting for the backend when `signal` aborts is dropped and rejects
   * with the signal's reason (one already running finishes).
   */
  classifyImage?(
    bytes: Uint8Array,
    options: { maxPixels?: number; spec: PreprocessSpec; signal?: AbortSignal },
  ): Promise<BackendOutput & { timings: { decode: number; preprocess: number } }>;
  /** Frees the session. */
  release(): Promise<void>;
}
