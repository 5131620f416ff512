/**
 * onnxruntime-web's WebAssembly backend (SIMD, multithreaded), optionally with
 * some operators (LRN) run on our own kernels between onnxruntime sessions.
 * onnxruntime-web is imported only when a part of the graph runs on it: a model
 * wholly on our kernels never loads it (~45 ms and ~10 MB per thread that would).
 *
 * @module
 */
import type * as ort from "onnxruntime-web";
import { ClassifierError } from "../errors.ts";
import { availableCores, type Backend, type BackendOutput, type GraphIo } from "./backend.ts";

export { availableCores };
import { type Int8Mode, type KernelRegistry, kernelRegistry, type LrnMode } from "./custom_ops.ts";
import { kernelSet, PartitionedRunner } from "./partitioned.ts";
import { BoundedQueue } from "../host/mod.ts";
import { adoptHelpers } from "./kernels/helper_threads.ts";
import {
  decodeModel,
  onnx,
  type PartitionedPlan,
  prepare,
  type PrepareOptions,
} from "../graph/mod.ts";

/** Options for {@linkcode createWasmBackend}. */
export interface WasmBackendOptions extends GraphIo {
  /**
   * Intra-op threads (default: the available cores). Process-wide in onnxruntime-web
   * (the first backend's value stays); our int8 kernels split each layer over this
   * many threads (1: no helper Workers) whatever onnxruntime-web got. Helper Workers
   * run until `release()`: in Deno a live Worker keeps the process from exiting on
   * its own, so release the backend (or exit) when done.
   */
  threads?: number;
  /**
   * Who runs LRN: `custom` (our WASM SIMD kernel between sessions) or `ort`
   * (onnxruntime-web's built-in). Default {@linkcode DEFAULT_LRN}.
   */
  lrn?: LrnMode;
  /**
   * Who runs quantized (QDQ) Gemm layers: `custom` (our int8 WASM SIMD kernel)
   * or `ort`. Default {@linkcode DEFAULT_INT8}. No effect on float models.
   */
  int8?: Int8Mode;
  /**
   * Run int8 Conv layers whose weights all fit 7 bits (-63..63), with uint8 activations,
   * on the 7-bit kernel (one relaxed-SIMD dot per 16 multiply-adds where the engine has
   * it; kernels/qconv_wasm.ts): the same outputs bit for bit. Default true; false keeps
   * the int8 GEMM (A/B runs).
   */
  sevenBitConv?: boolean;
  /**
   * Detach the model's buffer once the sessions and kernels are made, so its memory
   * goes back at once even where something still references it (onnxruntime-web
   * keeps the model it was given reachable). The caller must not use the bytes
   * afterwards. Default false.
   */
  releaseModel?: boolean;
  /**
   * Start the split kernels' helper threads before the backend is returned. By default a
   * model wholly on our kernels serves on one thread first and starts the helpers after its
   * first answer (or 1 s without one), swapping them in between two runs: the first answer
   * comes sooner, but until the swap the weights are packed twice and the model's bytes are
   * kept (synthetic int8 AlexNet, 2 threads, the server's peak: ~335 MB deferred, ~240 MB
   * eager; bench/launch.ts). Started inside a Worker the helpers are nested Workers, which
   * Deno 2.9 takes 0.5-1 s to start (~50 ms from the main thread): a server's inference
   * Worker gets helpers its server's thread started (`adoptHelperThreads`) and is eager, as
   * is a model on the server's own thread (src/classify).
   */
  eagerThreads?: boolean;
  /**
   * Most runs waiting or in progress; one more is refused at once with a
   * `QueueFullError` (`_bounded_queue.ts`). Default: unbounded (the HTTP
   * layer bounds requests with --max-queue before they get here).
   */
  maxQueue?: number;
  /** Start-up lines (here: what became of a QOperator int8 model). */
  log?: (line: string) => void;
}

/**
 * The default LRN implementation: whichever measured faster end to end
 * (BENCHMARKS.md, "LRN").
 */
export const DEFAULT_LRN: LrnMode = "ort";

/** The default for quantized layers: ours (BENCHMARKS.md, "int8"). */
export const DEFAULT_INT8: Int8Mode = "custom";

let configuredThreads: number | undefined;

/**
 * onnxruntime-web reads `env.wasm.numThreads` once, when it first initializes
 * its WebAssembly module; later sessions share that thread pool. The first
 * backend's thread count is noted here and given to onnxruntime-web when it loads.
 */
function configureThreads(threads: number): number {
  configuredThreads ??= threads;
  return configuredThreads;
}

let ortModule: Promise<typeof ort> | undefined;

/** onnxruntime-web, imported on first use with the configured threads. */
function loadOrt(): Promise<typeof ort> {
  ortModule ??= import("onnxruntime-web").then((m) => {
    m.env.wasm.numThreads = configuredThreads ?? availableCores();
    m.env.logLevel = "error";
    return m;
  });
  return ortModule;
}

/** Initializers at least this large are passed to onnxruntime as external data. */
const EXTERNAL_MIN_BYTES = 1024;

/** The name the model's own bytes go by as external data. */
const EXTERNAL_FILE = "model.onnx";

/**
 * The model with its large initializers turned into external data that points
 * back into `bytes` itself (location model.onnx, offset, length): nothing is
 * copied in JavaScript, and onnxruntime-web copies each tensor from the mounted
 * buffer straight into its own, instead of first copying the whole model into its
 * heap and then parsing a second copy of every weight out of it. Measured on the
 * fp32 synthetic AlexNet (244 MB): peak RSS 1153 -> 788 MB, same speed
 * (docs/int8.md, "Memory").
 */
function withExternalData(bytes: Uint8Array): Uint8Array {
  const model = decodeModel(bytes);
  let moved = 0;
  for (const t of model.graph?.initializer ?? []) {
    const raw = t.rawData;
    if (!raw || raw.length < EXTERNAL_MIN_BYTES || raw.buffer !== bytes.buffer) continue;
    t.externalData = [
      { key: "location", value: EXTERNAL_FILE },
      { key: "offset", value: String(raw.byteOffset - bytes.byteOffset) },
      { key: "length", value: String(raw.length) },
    ];
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.rawData = new Uint8Array(0);
    moved++;
  }
  return moved === 0 ? bytes : onnx.ModelProto.encode(model).finish();
}

/**
 * A session for one part. Parts whose weight DequantizeLinear nodes we folded
 * run unoptimized: onnxruntime-web 1.30's basic-level rewrites of a
 * "QuantizeLinear -> DequantizeLinear -> Conv(float weights)" graph change
 * its results (fc8 logits moved by 4.5% on the synthetic int8 AlexNet, while
 * "disabled" matches the unfolded graph exactly; docs/int8.md).
 */
async function createSession(
  bytes: Uint8Array,
  part: { folded: boolean },
): Promise<ort.InferenceSession> {
  const graph = withExternalData(bytes);
  const ort = await loadOrt();
  return await ort.InferenceSession.create(graph, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: part.folded ? "disabled" : "all",
    // onnxruntime's pool threads otherwise spin for a while after each run, taking the
    // cores from our kernels' helper Workers (int8 at 2 threads: 33 ms with spinning vs
    // 18 ms without, same process); for onnxruntime itself it changes nothing measurable
    // (docs/int8.md, session options).
    extra: { session: { intra_op: { allow_spinning: "0" } } },
    externalData: graph === bytes ? undefined : [{ path: EXTERNAL_FILE, data: bytes }],
  });
}

/**
 * The graph prepared for wasm (src/graph/prepare.ts) and run by a PartitionedRunner.
 * The plan stays inside this function: its parts' bytes are garbage once the sessions
 * and kernels hold copies. With `release`, the model's buffer (and a rewritten copy's)
 * is detached once they do.
 */
/** Frees the backing stores of the model bytes: a view's whole buffer goes. */
function releaseBytes(...views: Uint8Array[]): void {
  for (const bytes of new Set(views)) {
    if (bytes.buffer instanceof ArrayBuffer && !bytes.buffer.detached) bytes.buffer.transfer(0);
  }
}

/** A failure to read the graph or start its sessions, as the user sees it. */
async function modelInvalid<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (e) {
    throw new ClassifierError(
      "model_invalid",
      `Cannot create an onnxruntime-web session: ${(e as Error).message}`,
    );
  }
}

function createRunner(plan: PartitionedPlan, registry: KernelRegistry): Promise<PartitionedRunner> {
  return modelInvalid(PartitionedRunner.fromPlan(plan, registry, createSession));
}

function planFor(
  model: Uint8Array,
  registry: KernelRegistry,
  options: Omit<PrepareOptions, "kernels">,
): Promise<PartitionedPlan> {
  return modelInvalid(prepare(model, "wasm", { ...options, kernels: kernelSet(registry) }));
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
  const requested = options.threads ?? availableCores();
  const ortThreads = configureThreads(requested);
  const lrn = options.lrn ?? DEFAULT_LRN;
  const int8 = options.int8 ?? DEFAULT_INT8;
  const sevenBit = options.sevenBitConv;
  const registry = kernelRegistry(lrn, int8, { threads: requested, sevenBit });
  const plan = await planFor(model, registry, {
    // QOperator int8 files (the zoo's bvlcalexnet-12-int8) are rewritten to the QDQ layout
    // our int8 kernels take whole (src/graph/qoperator.ts); anything else passes unchanged.
    int8Kernels: int8 === "custom",
    release: options.releaseModel,
    log: options.log,
  });
  // A model wholly on our kernels serves at once on one thread; the helper Workers of the
  // split kernels join after the first answer (see `eagerThreads`).
  const deferThreads = requested > 1 && !options.eagerThreads &&
    plan.parts.every((p) => p.kind === "kernel");
  let runner = await createRunner(
    plan,
    deferThreads ? kernelRegistry(lrn, int8, { threads: 1, sevenBit }) : registry,
  );
  const { inputName, outputName } = options;
  const inputShape = runner.inputShapes[inputName];
  if (!inputShape || !runner.outputs.includes(outputName)) {
    await runner.release();
    throw new ClassifierError(
      "model_invalid",
      `Cannot use the model: it needs input "${inputName}" and output "${outputName}", ` +
        `it has inputs [${Object.keys(runner.inputShapes)}] and outputs [${runner.outputs}]`,
    );
  }
  // A run blocks the thread for its whole inference, so the event loop gets a turn before
  // each one: requests waiting at the socket come in (and get 503 when the server is full).
  const queue = new BoundedQueue({ capacity: options.maxQueue, yieldToEventLoop: true });
  const custom = new Set(runner.kernelOps);
  let released = false;
  // The helpers start once the first answer is out (their start and the second packing of the
  // weights would otherwise share this thread with it), or after HELPERS_IDLE_MS without one.
  let startHelpers: (() => void) | undefined;
  if (deferThreads) {
    const asked = new Promise<void>((resolve) => (startHelpers = resolve));
    const timer = setTimeout(() => startHelpers?.(), HELPERS_IDLE_MS);
    const upgraded = asked.then(() => {
      clearTimeout(timer);
      startHelpers = undefined;
      if (released) return;
      const started = performance.now();
      return createRunner(plan, registry).then(
        (next) =>
          // Swapped between runs; a backend released meanwhile frees the new runner instead.
          queue.run(async () => {
            if (released) return await next.release();
            const old = runner;
            runner = next;
            await old.release();
            options.log?.(
              `Our kernels now run on ${requested} threads (helpers ready in ` +
                `${Math.round(performance.now() - started)} ms)`,
            );
          }),
        (e) => options.log?.(`Our kernels stay on 1 thread: ${(e as Error).message}`),
      );
    }).finally(() => {
      if (options.releaseModel) releaseBytes(model, plan.bytes);
    });
    upgrading.add(upgraded);
    upgraded.finally(() => upgrading.delete(upgraded));
  } else if (options.releaseModel) releaseBytes(model, plan.bytes);

  return {
    name: "wasm",
    // With no onnxruntime part left, only our kernels' threads run.
    // The threads it runs on once the helpers have joined (deferThreads: within seconds).
    threads: runner.sessions.length === 0 ? requested : ortThreads,
    inputShape,
    kernels: {
      lrn: custom.has("LRN") ? "custom" : "ort",
      int8: custom.has("Gemm") || custom.has("Conv") ? "custom" : "ort",
    },
    get queueDepth() {
      return queue.pending;
    },
    async run(data: Float32Array, dims: readonly number[]): Promise<BackendOutput> {
      try {
        return await queue.run(async () => {
          const feeds = { [inputName]: { type: "float32" as const, data, dims } };
          const { outputs } = await runner.run(feeds, [outputName]);
          const out = outputs[outputName];
          return { data: out.data as Float32Array, dims: out.dims };
        });
      } finally {
        startHelpers?.();
      }
    },
    capture(data: Float32Array, dims: readonly number[]) {
      return queue.run(async () => {
        const feeds = { [inputName]: { type: "float32" as const, data, dims } };
        return (await runner.run(feeds, [outputName], { capture: true })).intermediates!;
      });
    },
    release: () => {
      released = true;
      startHelpers?.(); // settles the deferred start (it sees `released` and does nothing)
      return runner.release();
    },
  };
}

/**
 * How long a backend whose helpers wait for its first answer waits at most: a server that gets
 * no request soon takes up its threads while idle.
 */
const HELPERS_IDLE_MS = 1000;

const upgrading = new Set<Promise<unknown>>();

/**
 * Takes up helper Workers another thread started for this one (one port each, from
 * `startHelperWorker` in kernels/helper_threads.ts): the next backend of
 * `ports.length + 1` threads splits its layers over them instead of starting its own.
 *
 * @example
 * ```ts
 * adoptHelperThreads(ports);
 * const backend = await createWasmBackend(bytes, { ...io, threads: 2, eagerThreads: true });
 * ```
 */
export function adoptHelperThreads(ports: MessagePort[]): void {
  adoptHelpers(ports);
}

/**
 * Resolves once every backend's helper threads have started (or failed to): for tests. A
 * backend starts them after its first answer, or a second after it was made.
 */
export async function threadsSettled(): Promise<void> {
  await Promise.all(upgrading);
}
