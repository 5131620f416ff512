/**
 * The one contract every inference backend (wasm, webgpu, native) meets.
 *
 * @module
 */

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
  /** Runs x: [N, C, H, W] and returns y: [N, K]. Safe to call concurrently. */
  run(input: Float32Array, dims: readonly number[]): Promise<BackendOutput>;
  /**
   * Runs x and returns the tensors passed between the model's parts (the
   * outputs of the layers around our kernels), copied.
   */
  capture(input: Float32Array, dims: readonly number[]): Promise<Record<string, BackendOutput>>;
  /** Frees the session. */
  release(): Promise<void>;
}
