/**
 * onnxruntime-web's WebAssembly backend (SIMD, multithreaded).
 *
 * @module
 */
import * as ort from "onnxruntime-web";
import { ClassifierError } from "../errors.ts";
import type { Backend, BackendOutput, GraphIo } from "./backend.ts";
import { SerialQueue } from "./_serial_queue.ts";

/** Options for {@linkcode createWasmBackend}. */
export interface WasmBackendOptions extends GraphIo {
  /** Intra-op threads (default: the available cores). Process-wide in onnxruntime-web. */
  threads?: number;
}

/** Cores the runtime reports (navigator.hardwareConcurrency is standard in Deno and browsers). */
export function availableCores(): number {
  return Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1);
}

let configuredThreads: number | undefined;

/**
 * onnxruntime-web reads `env.wasm.numThreads` once, when it first initializes
 * its WebAssembly module; later sessions share that thread pool.
 */
function configureThreads(threads: number): number {
  if (configuredThreads === undefined) {
    ort.env.wasm.numThreads = threads;
    ort.env.logLevel = "error";
    configuredThreads = threads;
  }
  return configuredThreads;
}

/**
 * Creates an onnxruntime-web session on the wasm execution provider and checks
 * that the graph has the named float input and output.
 *
 * One session must not run twice at once: its `run` (ort.mjs of 1.30, the
 * `run` function of wasm-core-impl) takes its input/output pointer arrays from
 * the WebAssembly stack with stackSave/stackAlloc and then awaits (tensor
 * preparation, OrtRun) before stackRestore. A second run entering during those
 * awaits allocates on the same stack, and whichever finishes first restores
 * the stack under the other. So calls are queued here, one at a time; the
 * threads work inside each run.
 *
 * @example
 * ```ts
 * const backend = await createWasmBackend(bytes, { inputName: "data_0", outputName: "softmaxout_1" });
 * ```
 */
export async function createWasmBackend(
  model: Uint8Array,
  options: WasmBackendOptions,
): Promise<Backend> {
  const threads = configureThreads(options.threads ?? availableCores());
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(model, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
  } catch (e) {
    throw new ClassifierError(
      "model_invalid",
      `Cannot create an onnxruntime-web session: ${(e as Error).message}`,
    );
  }
  const { inputName, outputName } = options;
  const input = session.inputMetadata.find((m) => m.name === inputName);
  if (!input || !session.outputNames.includes(outputName)) {
    await session.release();
    throw new ClassifierError(
      "model_invalid",
      `Cannot use the model: it needs input "${inputName}" and output "${outputName}", ` +
        `it has inputs [${session.inputNames}] and outputs [${session.outputNames}]`,
    );
  }
  const inputShape = input.isTensor
    ? input.shape.map((d) => (typeof d === "number" && d > 0 ? d : null))
    : [];
  const queue = new SerialQueue();

  return {
    name: "wasm",
    threads,
    inputShape,
    run(data: Float32Array, dims: readonly number[]): Promise<BackendOutput> {
      return queue.run(async () => {
        const feeds = { [inputName]: new ort.Tensor("float32", data, dims) };
        const results = await session.run(feeds, [outputName]);
        const out = results[outputName];
        return { data: out.data as Float32Array, dims: out.dims };
      });
    },
    release: () => session.release(),
  };
}
