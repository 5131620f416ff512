/**
 * The WebGPU backend: onnxruntime-web's WebGPU execution provider runs the
 * graph parts between our kernels, each part keeping its tensors on the GPU;
 * LRN, which that provider lacks, runs on our WASM kernel between parts.
 *
 * `import "onnxruntime-web"` resolves to the package's node build in Deno
 * (`dist/ort.node.min.mjs`), which registers the wasm and cpu backends only.
 * The WebGPU provider is in `onnxruntime-web/webgpu` (`ort.webgpu.bundle.min.mjs`,
 * built on `ort-wasm-simd-threaded.asyncify.wasm`): a second, separate
 * onnxruntime instance with its own `env` and its own WebAssembly module, so
 * the wasm backend's process-wide settings (`env.wasm.numThreads`) and ours do
 * not meet. Tensors pass between the two as plain objects, which both accept.
 *
 * We make the GPUDevice ourselves and hand it to the provider (its `device`
 * option) so that we choose the adapter, see `device.lost`, and can fall back:
 * a lost device switches serving to a wasm backend made from the same bytes,
 * and the run that was in flight is answered by it.
 *
 * @module
 */
import type * as ort from "onnxruntime-web";
import { ClassifierError } from "../errors.ts";
import type { Backend, BackendOutput } from "./backend.ts";
import { type KernelRegistry, lrnFactory, type LrnMode } from "./custom_ops.ts";
import { kernelSet, PartitionedRunner } from "./partitioned.ts";
import { BoundedQueue } from "../host/mod.ts";
import { createWasmBackend, type WasmBackendOptions } from "./wasm.ts";
import { prepare } from "../graph/mod.ts";
import { deviceNodeRefusal } from "./_gpu_nodes.ts";

/** What we use of `navigator.gpu`; tests pass stand-ins to force failures. */
export interface GpuEntry {
  requestAdapter(options?: GPURequestAdapterOptions): Promise<GPUAdapter | null>;
}

/** Options for {@linkcode createWebGpuBackend}. */
export interface WebGpuBackendOptions extends WasmBackendOptions {
  /** Where adapters come from (default `navigator.gpu`). */
  gpu?: GpuEntry;
  /**
   * Accept a fallback (software) adapter such as Mesa's lavapipe (default
   * false): slower than wasm, so only when webgpu was asked for by name.
   */
  allowFallbackAdapter?: boolean;
  /** Where the adapter in use and a switch to wasm are reported. */
  log?: (line: string) => void;
  /** Makes the backend that takes over after a device loss (default: wasm on the same bytes). */
  fallback?: (model: Uint8Array) => Promise<Backend>;
}

/**
 * Who runs LRN on the GPU path: `custom`, our WASM kernel between the GPU
 * parts (default), or `ort`, onnxruntime's CPU LRN, which it places inside one
 * GPU session with a copy to the host and back (BENCHMARKS.md, "WebGPU").
 */
export const DEFAULT_WEBGPU_LRN: LrnMode = "custom";

/** How long a failed run waits for `device.lost` before it counts as an ordinary error. */
const LOST_GRACE_MS = 500;

/** Limits raised to the adapter's: AlexNet's fc6 weight alone is 151 MB. */
const RAISED_LIMITS = ["maxBufferSize", "maxStorageBufferBindingSize"] as const;

/** Optional features onnxruntime's WebGPU provider uses when the device has them. */
const WANTED_FEATURES = ["shader-f16", "subgroups"] as const;

type OrtGpu = typeof import("onnxruntime-web/webgpu");
let ortGpuModule: Promise<OrtGpu> | undefined;

/**
 * onnxruntime's WebGPU instance, imported on first use (not at start-up where
 * there is no adapter), with its flags set once: it runs GPU work, so 1 CPU
 * thread; and our adapter, or it would request one of its own.
 */
function loadOrtGpu(adapter: GPUAdapter): Promise<OrtGpu> {
  ortGpuModule ??= import("onnxruntime-web/webgpu").then((m) => {
    m.env.wasm.numThreads = 1;
    m.env.logLevel = "error";
    m.env.webgpu.adapter = adapter;
    return m;
  });
  return ortGpuModule;
}

/**
 * The adapter's description and whether it is a fallback (software) one.
 *
 * @example
 * ```ts
 * const adapter = await navigator.gpu.requestAdapter();
 * if (adapter) describeAdapter(adapter); // { description: "llvmpipe (LLVM 15.0.6, 256 bits)", fallback: true }
 * ```
 */
export function describeAdapter(adapter: GPUAdapter): { description: string; fallback: boolean } {
  const info = (adapter as { info?: Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean } })
    .info;
  const legacy = (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const description = info?.description ||
    [info?.vendor, info?.architecture, info?.device].filter((s) => s).join(" ") ||
    "unnamed adapter";
  return { description, fallback: Boolean(info?.isFallbackAdapter ?? legacy) };
}

/** Requests an adapter and a device with raised limits; throws why it cannot. */
async function openDevice(
  options: WebGpuBackendOptions,
): Promise<{ device: GPUDevice; description: string; ortGpu: OrtGpu }> {
  const gpu = options.gpu ?? (globalThis.navigator as { gpu?: GpuEntry } | undefined)?.gpu;
  if (!gpu) throw new TypeError("navigator.gpu is not available in this runtime");
  const refusal = deviceNodeRefusal(options);
  if (refusal) throw refusal;
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new TypeError("navigator.gpu found no adapter");
  const { description, fallback } = describeAdapter(adapter);
  if (fallback && !options.allowFallbackAdapter) {
    throw new TypeError(
      `the adapter is a fallback (software) one (${description}); ` +
        "ask for it with --backend=webgpu",
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({
    requiredLimits,
    requiredFeatures: requiredFeatures as GPUFeatureName[],
  });
  const ortGpu = await loadOrtGpu(adapter).catch((e) => {
    device.destroy();
    throw e;
  });
  return {
    device,
    description: `${description}${fallback ? " (fallback adapter)" : ""}`,
    ortGpu,
  };
}

/** Marks a run that stopped because the device was lost. */
class DeviceLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DeviceLostError";
  }
}

const LOST = Symbol("lost");

/**
 * Creates the WebGPU backend, or throws why it cannot (no `navigator.gpu`, no
 * adapter, a fallback adapter not asked for, a device or session that fails);
 * `createBackend` logs that and goes on to wasm.
 *
 * int8 models are rewritten to float first (src/graph/prepare.ts): the
 * GPU gets the int8-rounded weights as float32. After a device loss the
 * backend serves through a wasm backend made from the original bytes, which
 * it keeps for that purpose; `name` then says "wasm".
 *
 * @example
 * ```ts
 * const backend = await createWebGpuBackend(bytes, {
 *   inputName: "data_0",
 *   outputName: "softmaxout_1",
 * });
 * ```
 */
export async function createWebGpuBackend(
  model: Uint8Array,
  options: WebGpuBackendOptions,
): Promise<Backend> {
  const log = options.log ?? (() => {});
  const { device, description, ortGpu } = await openDevice(options);
  let released = false;
  let lostInfo: GPUDeviceLostInfo | undefined;
  const lost = device.lost.then((info) => {
    lostInfo = info;
    return LOST;
  });

  const lrn = options.lrn ?? DEFAULT_WEBGPU_LRN;
  const registry: KernelRegistry = new Map(lrn === "custom" ? [["LRN", lrnFactory]] : []);
  let runner: PartitionedRunner;
  try {
    const plan = await prepare(model, "webgpu", { kernels: kernelSet(registry), log });
    runner = await PartitionedRunner.fromPlan(
      plan,
      registry,
      (part) =>
        ortGpu.InferenceSession.create(part, {
          executionProviders: [{ name: "webgpu", device }],
          graphOptimizationLevel: "all",
          // Errors only: with --lrn=ort it warns, as expected, that LRN runs on its CPU provider.
          logSeverityLevel: 3,
        }) as Promise<ort.InferenceSession>,
    );
  } catch (e) {
    released = true;
    device.destroy();
    throw e instanceof ClassifierError ? e : new ClassifierError(
      "model_invalid",
      `Cannot create an onnxruntime-web WebGPU session: ${(e as Error).message}`,
    );
  }
  const { inputName, outputName } = options;
  const inputShape = runner.inputShapes[inputName];
  if (!inputShape || !runner.outputs.includes(outputName)) {
    released = true;
    await runner.release();
    device.destroy();
    throw new ClassifierError(
      "model_invalid",
      `Cannot use the model: it needs input "${inputName}" and output "${outputName}", ` +
        `it has inputs [${Object.keys(runner.inputShapes)}] and outputs [${runner.outputs}]`,
    );
  }
  log(`webgpu: serving on ${description}; LRN on ${lrn === "custom" ? "our WASM kernel" : "ort"}`);

  const makeFallback = options.fallback ??
    ((bytes: Uint8Array) => createWasmBackend(bytes, options));
  let fallback: Promise<Backend> | undefined;
  let active: Backend | undefined;
  /** The last GPU run, settled or not (one left behind by a device loss may still be going). */
  let running: Promise<unknown> = Promise.resolve();
  const takeOver = (): Promise<Backend> => {
    fallback ??= (async () => {
      log(
        `webgpu: device lost (${lostInfo?.reason ?? "unknown"}: ${lostInfo?.message ?? ""}); ` +
          "serving on wasm from now on",
      );
      // Free the GPU sessions once a run cut short by the loss has stopped (they share
      // onnxruntime's WebGPU instance with any other webgpu backend); never wait for them.
      running.then(() => runner.release()).catch(() => {});
      active = await makeFallback(model);
      return active;
    })();
    return fallback;
  };
  lost.then(() => {
    if (!released) {
      takeOver().catch((e) => log(`webgpu: cannot start the wasm fallback: ${e.message}`));
    }
  });

  const queue = new BoundedQueue({ capacity: options.maxQueue, yieldToEventLoop: true });
  /** Runs on the GPU; a device lost before or during the run rejects with DeviceLostError. */
  const onGpu = <T>(task: () => Promise<T>): Promise<T> =>
    queue.run(async () => {
      if (lostInfo) throw new DeviceLostError("the WebGPU device was lost");
      const run = task();
      running = run.catch(() => {});
      const result = await Promise.race([run, lost]);
      if (result === LOST) throw new DeviceLostError("the WebGPU device was lost during the run");
      return result as T;
    });
  /** Whether an error came from a lost device (the loss may be reported just after). */
  const deviceLost = async (e: unknown): Promise<boolean> => {
    if (e instanceof DeviceLostError) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, LOST_GRACE_MS));
    await Promise.race([lost, grace]);
    clearTimeout(timer);
    return lostInfo !== undefined && !released;
  };
  /** The GPU, or the fallback once the device is gone; a run caught by the loss is rerun there. */
  const serve = async <T>(gpu: () => Promise<T>, cpu: (b: Backend) => Promise<T>): Promise<T> => {
    if (!lostInfo) {
      try {
        return await onGpu(gpu);
      } catch (e) {
        if (!(await deviceLost(e))) throw e;
      }
    }
    return cpu(await takeOver());
  };
  const feeds = (data: Float32Array, dims: readonly number[]) => ({
    [inputName]: { type: "float32" as const, data, dims },
  });

  return {
    get name() {
      return active?.name ?? "webgpu";
    },
    get threads() {
      return active?.threads ?? 1;
    },
    inputShape,
    get kernels() {
      return active?.kernels ?? {
        lrn: runner.kernelOps.includes("LRN") ? "custom" as const : "ort" as const,
        int8: "ort" as const,
      };
    },
    get queueDepth() {
      return queue.pending + (active?.queueDepth ?? 0);
    },
    run(data: Float32Array, dims: readonly number[]): Promise<BackendOutput> {
      return serve(async () => {
        const { outputs } = await runner.run(feeds(data, dims), [outputName]);
        const out = outputs[outputName];
        return { data: out.data as Float32Array, dims: out.dims };
      }, (b) => b.run(data, dims));
    },
    capture(data: Float32Array, dims: readonly number[]) {
      return serve(
        async () =>
          (await runner.run(feeds(data, dims), [outputName], { capture: true })).intermediates!,
        (b) => b.capture(data, dims),
      );
    },
    async release() {
      released = true;
      if (!fallback) await runner.release();
      device.destroy();
      if (fallback) await (await fallback.catch(() => undefined))?.release();
    },
  };
}
