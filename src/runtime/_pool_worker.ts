/**
 * One worker of the worker pool (`worker_pool.ts`): its own onnxruntime-web
 * instance with one wasm session (our kernels included; single-threaded in a
 * pool of several, `threads` intra-op threads as the one inference Worker),
 * so its runs neither block the server's thread nor share a WebAssembly
 * stack with another session.
 *
 * Messages in: `{ type: "init", model, options }` (answered
 * `{ type: "ready", inputShape, kernels, threads }` or `{ type: "failed", message }`),
 * then `{ type: "run" | "capture", id, data, dims }` or
 * `{ type: "image", id, bytes, maxPixels, spec }` (decode, preprocess and
 * run one encoded image here, off the server's thread), answered
 * `{ id, ok: true, result }` or `{ id, ok: false, message, code }` (`code`:
 * a {@linkcode ClassifierError}'s, so a decode error keeps its 4xx).
 *
 * @module
 */
import { ClassifierError, type ErrorCode } from "../errors.ts";
import { decodeImage, preprocess, type PreprocessSpec } from "../image/mod.ts";
import type { Backend, BackendOutput } from "./backend.ts";
import { createWasmBackend, type WasmBackendOptions } from "./wasm.ts";

/** The `init` message. */
export interface PoolInit {
  type: "init";
  /** The ONNX model (this worker's copy, freed once the session holds its own). */
  model: Uint8Array;
  /** The session's options; `threads` defaults to 1. */
  options: WasmBackendOptions;
}

/** A `run` or `capture` message: x: [N, C, H, W]. */
export interface PoolTensorTask {
  type: "run" | "capture";
  id: number;
  data: Float32Array;
  dims: number[];
}

/** An `image` message: one encoded image, decoded for `spec`, run as x: [1, 3, H, W]. */
export interface PoolImageTask {
  type: "image";
  id: number;
  bytes: Uint8Array;
  maxPixels?: number;
  spec: PreprocessSpec;
}

/** Work for a worker. */
export type PoolTask = PoolTensorTask | PoolImageTask;

/** A failed task's answer; `code` is set when the error was a {@linkcode ClassifierError}. */
export interface PoolFailure {
  id: number;
  ok: false;
  message: string;
  code?: ErrorCode;
}

interface Port {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent) => void) | null;
}
const port = self as unknown as Port;

let backend: Backend | undefined;

/** The tensor's own buffer, when it can be moved rather than copied. */
function movable(out: BackendOutput): ArrayBuffer[] {
  const { buffer, byteLength } = out.data;
  return buffer instanceof ArrayBuffer && buffer.byteLength === byteLength ? [buffer] : [];
}

async function init(message: PoolInit): Promise<void> {
  try {
    const { options } = message;
    // The model is this worker's own copy: nothing else here needs it once the session is made.
    backend = await createWasmBackend(message.model, {
      ...options,
      threads: options.threads ?? 1,
      releaseModel: true,
    });
    const { inputShape, kernels, threads } = backend;
    port.postMessage({ type: "ready", inputShape, kernels, threads });
  } catch (e) {
    port.postMessage({ type: "failed", message: (e as Error).message ?? String(e) });
  }
}

/** Decode -> preprocess -> run, timing the first two as Classifier.classify does. */
async function image(session: Backend, message: PoolImageTask): Promise<void> {
  const { id, bytes, maxPixels, spec } = message;
  const t0 = performance.now();
  const decoded = await decodeImage(bytes, { maxPixels, fitFor: spec });
  const t1 = performance.now();
  const x = preprocess(decoded, spec); // x: [1, 3, H, W]
  const t2 = performance.now();
  const out = await session.run(x, [1, 3, spec.height, spec.width]);
  const result = { ...out, timings: { decode: t1 - t0, preprocess: t2 - t1 } };
  port.postMessage({ id, ok: true, result }, movable(out));
}

async function task(message: PoolTask): Promise<void> {
  const { id } = message;
  try {
    if (!backend) throw new TypeError("Cannot run the model: the worker has no session yet");
    if (message.type === "image") {
      await image(backend, message);
    } else if (message.type === "run") {
      const result = await backend.run(message.data, message.dims);
      port.postMessage({ id, ok: true, result }, movable(result));
    } else {
      const result = await backend.capture(message.data, message.dims);
      port.postMessage({ id, ok: true, result }, Object.values(result).flatMap(movable));
    }
  } catch (e) {
    // Errors cross as values: the message, and the code of one a user may see.
    const failure: PoolFailure = { id, ok: false, message: (e as Error).message ?? String(e) };
    if (e instanceof ClassifierError) failure.code = e.code;
    port.postMessage(failure);
  }
}

port.onmessage = (event: MessageEvent) => {
  const message = event.data as PoolInit | PoolTask;
  if (message.type === "init") void init(message);
  else void task(message);
};
