/**
 * onnxruntime-node (native CPU, MLAS) as a backend, for self-hosted servers:
 * `--backend=native`. onnxruntime-node loads in Deno through Node-API, so the
 * process needs `--allow-ffi` (`deno task start:native`). It is imported
 * with a dynamic `import()` inside the factory: edge deployments, which run
 * wasm, never load it.
 *
 * A run of onnxruntime-node 1.30 is synchronous on the JavaScript thread (its
 * `run` calls the binding from a `setImmediate`), so, as on wasm, runs are
 * queued one at a time and each starts a macrotask after it is queued: the
 * event loop takes in waiting requests between runs (`_bounded_queue.ts`).
 *
 * @module
 */
import { ClassifierError } from "../errors.ts";
import type { Backend, BackendOutput } from "./backend.ts";
import { availableCores } from "./wasm.ts";
import { BoundedQueue } from "../host/mod.ts";
import { prepare } from "../graph/mod.ts";

type OrtNode = typeof import("onnxruntime-node");

let loaded: Promise<OrtNode> | undefined;

/** Imports onnxruntime-node once; throws a TypeError saying why it cannot. */
function loadOrtNode(): Promise<OrtNode> {
  loaded ??= import("onnxruntime-node").catch((e) => {
    loaded = undefined;
    const message = (e as Error).message;
    const hint = /ffi|permission|NotCapable/i.test(message)
      ? " (the process needs --allow-ffi, e.g. deno task start:native)"
      : "";
    throw new TypeError(`Cannot load onnxruntime-node${hint}: ${message}`);
  });
  return loaded;
}

/** What the native backend takes: the graph's names, its threads and its queue. */
export interface NativeBackendOptions {
  inputName: string;
  outputName: string;
  threads?: number;
  maxQueue?: number;
}

/**
 * Creates an onnxruntime-node session with `options.threads` intra-op threads
 * (default: the available cores), no inter-op parallelism and no spinning
 * (idle spinning threads would take the cores from decoding), and checks that
 * the graph has the named float input and output.
 *
 * @example
 * ```ts
 * const backend = await createNativeBackend(bytes, { inputName: "data_0", outputName: "softmaxout_1" });
 * const { data } = await backend.run(new Float32Array(3 * 224 * 224), [1, 3, 224, 224]);
 * ```
 */
export async function createNativeBackend(
  model: Uint8Array,
  options: NativeBackendOptions,
): Promise<Backend> {
  const ort = await loadOrtNode();
  const threads = options.threads ?? availableCores();
  // onnxruntime-node runs the file whole: the plan is the bytes as given.
  const plan = await prepare(model, "native");
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  try {
    session = await ort.InferenceSession.create(plan.bytes, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: "all",
      extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } },
    });
  } catch (e) {
    throw new ClassifierError(
      "model_invalid",
      `Cannot create an onnxruntime-node session: ${(e as Error).message}`,
    );
  }
  const { inputName, outputName } = options;
  const input = session.inputMetadata.find((m) => m.name === inputName);
  if (!input?.isTensor || !session.outputNames.includes(outputName)) {
    await session.release();
    throw new ClassifierError(
      "model_invalid",
      `Cannot use the model: it needs input "${inputName}" and output "${outputName}", ` +
        `it has inputs [${session.inputNames}] and outputs [${session.outputNames}]`,
    );
  }
  const inputShape = input.shape.map((d) => (typeof d === "number" && d > 0 ? d : null));
  const queue = new BoundedQueue({ capacity: options.maxQueue, yieldToEventLoop: true });

  return {
    name: "native",
    threads,
    inputShape,
    kernels: { lrn: "ort", int8: "ort" },
    get queueDepth() {
      return queue.pending;
    },
    run(data: Float32Array, dims: readonly number[]): Promise<BackendOutput> {
      return queue.run(async () => {
        const feeds = { [inputName]: new ort.Tensor("float32", data, dims) };
        const out = (await session.run(feeds, [outputName]))[outputName];
        return { data: out.data as Float32Array, dims: out.dims };
      });
    },
    capture(): Promise<Record<string, BackendOutput>> {
      return Promise.reject(
        new TypeError(
          "Cannot capture the tensors between layers on the native backend: it runs the " +
            "whole graph in one session; use the wasm backend",
        ),
      );
    },
    release: () => session.release(),
  };
}
