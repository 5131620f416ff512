/**
 * onnxruntime-web's WebAssembly backend (SIMD, multithreaded), optionally with
 * some operators (LRN) run on our own kernels between onnxruntime sessions.
 *
 * @module
 */
import * as ort from "onnxruntime-web";
import { ClassifierError } from "../errors.ts";
import type { Backend, BackendOutput, GraphIo } from "./backend.ts";
import { kernelRegistry, type LrnMode } from "./custom_ops.ts";
import { PartitionedRunner } from "./partitioned.ts";
import { SerialQueue } from "./_serial_queue.ts";

/** Options for {@linkcode createWasmBackend}. */
export interface WasmBackendOptions extends GraphIo {
  /** Intra-op threads (default: the available cores). Process-wide in onnxruntime-web. */
  threads?: number;
  /**
   * Who runs LRN: `custom` (our WASM SIMD kernel between sessions) or `ort`
   * (onnxruntime-web's built-in). Default {@linkcode DEFAULT_LRN}.
   */
  lrn?: LrnMode;
}

/**
 * The default LRN implementation: whichever measured faster end to end
 * (BENCHMARKS.md, "LRN").
 */
export const DEFAULT_LRN: LrnMode = "ort";

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

function createSession(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
}

/**
 * Creates onnxruntime-web session(s) on the wasm execution provider and checks
 * that the graph has the named float input and output.
 *
 * One session must not run twice at once: its `run` (ort.mjs of 1.30, the
 * `run` function of wasm-core-impl) takes its input/output pointer arrays from
 * the WebAssembly stack with stackSave/stackAlloc and then awaits (tensor
 * preparation, OrtRun) before stackRestore. A second run entering during those
 * awaits allocates on the same stack, and whichever finishes first restores
 * the stack under the other. Our kernels also reuse their buffers. So calls
 * are queued here, one at a time; the threads work inside each run.
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
  const lrn = options.lrn ?? DEFAULT_LRN;
  let runner: PartitionedRunner;
  try {
    runner = await PartitionedRunner.create(model, kernelRegistry(lrn), createSession);
  } catch (e) {
    throw new ClassifierError(
      "model_invalid",
      `Cannot create an onnxruntime-web session: ${(e as Error).message}`,
    );
  }
  const { inputName, outputName } = options;
  const sessions = runner.sessions;
  const input = sessions.flatMap((s) => s.inputMetadata).find((m) => m.name === inputName);
  const outputs = sessions.flatMap((s) => s.outputNames);
  if (!input || !outputs.includes(outputName)) {
    await runner.release();
    throw new ClassifierError(
      "model_invalid",
      `Cannot use the model: it needs input "${inputName}" and output "${outputName}", ` +
        `it has inputs [${sessions.flatMap((s) => s.inputNames)}] and outputs [${outputs}]`,
    );
  }
  const inputShape = input.isTensor
    ? input.shape.map((d) => (typeof d === "number" && d > 0 ? d : null))
    : [];
  const queue = new SerialQueue();
  const custom = runner.layout.flat().filter((op) => kernelRegistry(lrn).has(op));

  return {
    name: "wasm",
    threads,
    inputShape,
    kernels: { lrn: custom.includes("LRN") ? "custom" : "ort" },
    get queueDepth() {
      return queue.pending;
    },
    run(data: Float32Array, dims: readonly number[]): Promise<BackendOutput> {
      return queue.run(async () => {
        const feeds = { [inputName]: new ort.Tensor("float32", data, dims) };
        const { outputs } = await runner.run(feeds, [outputName]);
        const out = outputs[outputName];
        return { data: out.data as Float32Array, dims: out.dims };
      });
    },
    capture(data: Float32Array, dims: readonly number[]) {
      return queue.run(async () => {
        const feeds = { [inputName]: new ort.Tensor("float32", data, dims) };
        return (await runner.run(feeds, [outputName], { capture: true })).intermediates!;
      });
    },
    release: () => runner.release(),
  };
}
