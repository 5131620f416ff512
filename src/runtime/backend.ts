/**
 * The one contract every inference backend (wasm, webgpu, native) meets: run
 * tensors and release. Images are not its business (src/classify decodes them).
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

/** Options of one {@linkcode Backend.run}. */
export interface RunOptions {
  /** Aborted: the run is no longer wanted (the request's deadline passed or its client left). */
  signal?: AbortSignal;
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
   * Set while the backend cannot run anything (its Workers are restarting, or
   * stopped for good): why, as a message for users. /readyz then answers 503.
   */
  readonly failure?: string;
  /**
   * Runs x: [N, C, H, W] and returns y: [N, K]. Safe to call concurrently. A
   * backend that queues runs drops one whose `signal` aborts before it starts
   * (rejecting with the signal's reason); others may ignore the signal.
   */
  run(input: Float32Array, dims: readonly number[], options?: RunOptions): Promise<BackendOutput>;
  /**
   * Runs x and returns the tensors passed between the model's parts (the
   * outputs of the layers around our kernels), copied.
   */
  capture(input: Float32Array, dims: readonly number[]): Promise<Record<string, BackendOutput>>;
  /** Frees the session. */
  release(): Promise<void>;
}

/**
 * Cores the runtime reports (navigator.hardwareConcurrency is standard in Deno and browsers).
 *
 * @example
 * ```ts
 * const threads = availableCores(); // 2 on a 2-core machine
 * ```
 */
export function availableCores(): number {
  return Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1);
}
