/**
 * One worker of the worker pool (`worker_pool.ts`): its own onnxruntime-web
 * instance with one single-threaded wasm session (our kernels included), so
 * its runs neither block the server's thread nor share a WebAssembly stack
 * with another session.
 *
 * Messages in: `{ type: "init", model, options }` (answered
 * `{ type: "ready", inputShape, kernels }` or `{ type: "failed", message }`),
 * then `{ type: "run" | "capture", id, data, dims }` (answered
 * `{ id, ok: true, result }` or `{ id, ok: false, message }`).
 *
 * @module
 */
import type { Backend, BackendOutput } from "./backend.ts";
import { createWasmBackend, type WasmBackendOptions } from "./wasm.ts";

/** The `init` message. */
export interface PoolInit {
  type: "init";
  /** The ONNX model (this worker's copy; the session keeps its own). */
  model: Uint8Array;
  options: WasmBackendOptions;
}

/** A `run` or `capture` message: x: [N, C, H, W]. */
export interface PoolTask {
  type: "run" | "capture";
  id: number;
  data: Float32Array;
  dims: number[];
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
    backend = await createWasmBackend(message.model, { ...message.options, threads: 1 });
    port.postMessage({ type: "ready", inputShape: backend.inputShape, kernels: backend.kernels });
  } catch (e) {
    port.postMessage({ type: "failed", message: (e as Error).message ?? String(e) });
  }
}

async function task(message: PoolTask): Promise<void> {
  const { id, type, data, dims } = message;
  try {
    if (!backend) throw new TypeError("Cannot run the model: the worker has no session yet");
    if (type === "run") {
      const result = await backend.run(data, dims);
      port.postMessage({ id, ok: true, result }, movable(result));
    } else {
      const result = await backend.capture(data, dims);
      port.postMessage({ id, ok: true, result }, Object.values(result).flatMap(movable));
    }
  } catch (e) {
    port.postMessage({ id, ok: false, message: (e as Error).message ?? String(e) });
  }
}

port.onmessage = (event: MessageEvent) => {
  const message = event.data as PoolInit | PoolTask;
  if (message.type === "init") void init(message);
  else void task(message);
};
