/**
 * Runs a partitioned model: onnxruntime sessions for the graph parts and our
 * kernels for the nodes between them, passing tensors along by name.
 *
 * @module
 */
import type * as ort from "onnxruntime-web";
import { type KernelPart, type KernelSet, type Partition, partitionModel } from "../graph/mod.ts";
import type { CustomKernel, KernelRegistry, TensorValue } from "./custom_ops.ts";

/** Makes an onnxruntime session for one graph part (`folded`: see GraphPart.folded). */
export type SessionFactory = (
  bytes: Uint8Array,
  part: { folded: boolean },
) => Promise<ort.InferenceSession>;

/**
 * What `prepare` (src/graph/prepare.ts) needs to know of a registry's kernels to cut
 * the graph for them.
 *
 * @example
 * ```ts
 * const plan = await prepare(bytes, "wasm", { kernels: kernelSet(kernelRegistry("custom")) });
 * ```
 */
export function kernelSet(registry: KernelRegistry): KernelSet {
  return {
    ops: new Set(registry.keys()),
    fuseQdq: (node) => registry.get(node.opType!)?.fusesQdq ?? false,
    foldDequantize: [...registry.values()].some((f) => f.fusesQdq),
    accept: (part) => registry.get(part.node.opType!)?.accepts?.(part) ?? true,
    wholeGraphOnly: (node) => registry.get(node.opType!)?.wholeGraphOnly ?? false,
  };
}

/** What a step keeps of its part: names only, so the model bytes can be collected. */
interface StepPart {
  inputs: string[];
  outputs: string[];
  ops: string[];
}

/**
 * A tensor passed between parts: an onnxruntime `Tensor`, or what our kernels make, the same
 * three fields without onnxruntime (whose module a model wholly on our kernels never loads).
 */
export type RunTensor = Pick<ort.Tensor, "type" | "data" | "dims">;

type OrtModule = typeof ort;

type Step =
  | { kind: "graph"; part: StepPart; session: ort.InferenceSession }
  | { kind: "kernel"; part: StepPart & { opType: string }; kernel: CustomKernel };

/** What {@linkcode PartitionedRunner.run} returns. */
export interface PartitionedResult {
  /** The requested outputs. */
  outputs: Record<string, RunTensor>;
  /** With `capture`, every tensor passed between parts (copied, safe to keep). */
  intermediates?: Record<string, TensorValue>;
}

/** Segment -> kernel -> segment, for any batch size. Not reentrant: queue callers. */
export class PartitionedRunner {
  readonly #steps: Step[];
  /** onnxruntime-web, loaded only when a part runs on it (to wrap its feeds). */
  readonly #ort: OrtModule | undefined;
  /** Op types of each step, e.g. [["Conv","Relu"], ["LRN"], ...]. */
  readonly layout: string[][];
  /** The model's graph outputs. */
  readonly outputs: string[];
  /** Declared shape of each graph input (null for symbolic dims). */
  readonly inputShapes: Record<string, (number | null)[]>;

  private constructor(
    steps: Step[],
    outputs: string[],
    inputShapes: Record<string, (number | null)[]>,
    ortModule: OrtModule | undefined,
  ) {
    this.#steps = steps;
    this.#ort = ortModule;
    this.outputs = outputs;
    this.inputShapes = inputShapes;
    this.layout = steps.map((s) => s.part.ops);
  }

  /**
   * Partitions `bytes` at every op type in `registry` (no rewrite: backends call
   * `prepare` in src/graph/prepare.ts, then {@linkcode PartitionedRunner.fromPlan}).
   *
   * @example
   * ```ts
   * const runner = await PartitionedRunner.create(bytes, kernelRegistry("custom"), (b) =>
   *   ort.InferenceSession.create(b, { executionProviders: ["wasm"] }));
   * ```
   */
  static async create(
    bytes: Uint8Array,
    registry: KernelRegistry,
    createSession: SessionFactory,
  ): Promise<PartitionedRunner> {
    const { ops, ...options } = kernelSet(registry);
    const plan = partitionModel(bytes, ops, options);
    return await PartitionedRunner.fromPlan(plan, registry, createSession);
  }

  /**
   * Prepares a session per graph part of the plan and a kernel per custom node, or
   * per run of custom nodes that `registry.chain` takes as one (each feeding only the
   * next; the tensors inside a run are then not captured).
   *
   * @example
   * ```ts
   * const registry = kernelRegistry("custom");
   * const plan = await prepare(bytes, "wasm", { kernels: kernelSet(registry) });
   * const runner = await PartitionedRunner.fromPlan(plan, registry, (b) =>
   *   ort.InferenceSession.create(b, { executionProviders: ["wasm"] }));
   * ```
   */
  static async fromPlan(
    plan: Partition,
    registry: KernelRegistry,
    createSession: SessionFactory,
  ): Promise<PartitionedRunner> {
    const { parts, outputs, inputShapes } = plan;
    const steps: Step[] = [];
    const ortModule = parts.some((p) => p.kind === "graph")
      ? await import("onnxruntime-web")
      : undefined;
    try {
      // Steps keep names only: the parts' bytes and initializers (views into the
      // whole model's buffer) are garbage once sessions and kernels hold copies.
      const consumers = new Map<string, number>();
      for (const name of [...parts.flatMap((p) => p.inputs), ...outputs]) {
        consumers.set(name, (consumers.get(name) ?? 0) + 1);
      }
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i];
        const { inputs, outputs } = part;
        const run = registry.chain && part.kind === "kernel" ? chainRun(parts, i, consumers) : [];
        const chain = run.length >= 2 ? await registry.chain!(run) : undefined;
        if (chain) {
          const taken = run.slice(0, chain.taken);
          steps.push({
            kind: "kernel",
            part: {
              inputs,
              outputs: taken[taken.length - 1].outputs,
              ops: taken.map((p) => p.opType),
              opType: taken.map((p) => p.opType).join("+"),
            },
            kernel: chain.kernel,
          });
          i += chain.taken - 1;
        } else if (part.kind === "graph") {
          const session = await createSession(part.bytes, part);
          steps.push({ kind: "graph", part: { inputs, outputs, ops: part.ops }, session });
        } else {
          const kernel = await registry.get(part.opType)!(part);
          steps.push({
            kind: "kernel",
            part: { inputs, outputs, ops: [part.opType], opType: part.opType },
            kernel,
          });
        }
      }
    } catch (e) {
      for (const s of steps) if (s.kind === "kernel") s.kernel.release?.();
      await Promise.all(steps.map((s) => s.kind === "graph" ? s.session.release() : undefined));
      throw e;
    }
    return new PartitionedRunner(steps, outputs, inputShapes, ortModule);
  }

  /** Op types that run on our kernels. */
  get kernelOps(): string[] {
    return this.#steps.flatMap((s) => s.kind === "kernel" ? s.part.ops : []);
  }

  /** The sessions of the graph parts, in order. */
  get sessions(): ort.InferenceSession[] {
    return this.#steps.flatMap((s) => s.kind === "graph" ? [s.session] : []);
  }

  /** Runs all parts on `feeds` and returns `outputNames`. */
  async run(
    feeds: Record<string, RunTensor>,
    outputNames: string[],
    options: { capture?: boolean } = {},
  ): Promise<PartitionedResult> {
    const env = new Map<string, RunTensor>(Object.entries(feeds));
    const fromKernel = new Set<string>();
    const intermediates: Record<string, TensorValue> | undefined = options.capture ? {} : undefined;
    const keep = (name: string, t: RunTensor) => {
      if (intermediates && t.type === "float32") {
        intermediates[name] = { data: (t.data as Float32Array).slice(), dims: t.dims };
      }
    };
    const take = (name: string) => {
      const t = env.get(name);
      if (!t) {
        throw new Error(`Cannot run the partitioned model: tensor "${name}" was never produced`);
      }
      return t;
    };
    for (const step of this.#steps) {
      if (step.kind === "graph") {
        const input = Object.fromEntries(
          step.part.inputs.map((n) => [n, this.#ortTensor(take(n))]),
        );
        const out = await step.session.run(input, step.part.outputs);
        for (const name of step.part.outputs) {
          env.set(name, out[name]);
          keep(name, out[name]);
        }
      } else {
        const inputs = step.part.inputs.map((n) => {
          const t = take(n);
          if (t.type !== "float32") {
            throw new TypeError(
              `Cannot run ${step.part.opType} on "${n}": it is ${t.type}, not float32`,
            );
          }
          return { data: t.data as Float32Array, dims: t.dims };
        });
        const outputs = step.kernel.run(inputs);
        step.part.outputs.forEach((name, i) => {
          // The kernel reuses its buffer next call; the tensor is consumed before that.
          const t: RunTensor = { type: "float32", data: outputs[i].data, dims: outputs[i].dims };
          env.set(name, t);
          fromKernel.add(name);
          keep(name, t);
        });
      }
    }
    const result = (n: string) => {
      const t = take(n);
      // A kernel's buffer is overwritten by the next run; hand out a copy.
      return fromKernel.has(n) ? { ...t, data: (t.data as Float32Array).slice() } : t;
    };
    return { outputs: Object.fromEntries(outputNames.map((n) => [n, result(n)])), intermediates };
  }

  /** `t` as the onnxruntime Tensor a session takes. */
  #ortTensor(t: RunTensor): ort.Tensor {
    const Tensor = this.#ort!.Tensor;
    return t instanceof Tensor
      ? t
      : new Tensor(t.type as "float32", t.data as Float32Array, t.dims);
  }

  /** Frees every session and kernel. */
  async release(): Promise<void> {
    for (const s of this.#steps) if (s.kind === "kernel") s.kernel.release?.();
    await Promise.all(this.sessions.map((s) => s.release()));
  }
}

/**
 * Kernel parts from `parts[i]` on, each with one output that only the next one reads
 * (`consumers`: how many parts, and graph outputs, read each tensor): what a
 * registry's `chain` may fuse.
 */
export function chainRun(
  parts: ReturnType<typeof partitionModel>["parts"],
  i: number,
  consumers: Map<string, number>,
): KernelPart[] {
  const run: KernelPart[] = [];
  for (let j = i; j < parts.length; j++) {
    const p = parts[j];
    if (p.kind !== "kernel") break;
    const prev = run[run.length - 1];
    if (prev && (p.inputs.length !== 1 || p.inputs[0] !== prev.outputs[0])) break;
    run.push(p);
    if (p.outputs.length !== 1 || consumers.get(p.outputs[0]) !== 1) break;
  }
  return run;
}
