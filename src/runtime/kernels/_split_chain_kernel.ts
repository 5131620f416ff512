/**
 * A chain of layers (Conv, LRN, MaxPool) split across threads with one hand-off per
 * run ({@linkcode createSplitChain}, exported by split.ts): its plan, its slices on
 * this thread and in the helpers, the shared block its output goes into, and one run.
 *
 * @module
 */
import { CONTROL } from "./_split_protocol.ts";
import type { QExports } from "./q_wasm.ts";
import {
  chainInChannels,
  type ChainOp,
  type ChainSlice,
  createChainSlice,
  planChain,
  plansFor,
  type SlicePlan,
  sliceSpec,
} from "./_split_chain.ts";
import type { Helper, KernelHelpers } from "./_split_helpers.ts";
import { poolGeometry } from "./maxpool_reference.ts";
import { type ConvDims, convGeometry } from "./qconv_reference.ts";

/** A chain of layers split across threads, with one hand-off per run. */
export interface SplitChainKernel {
  /** [N, M, OH, OW] for an input of `dims`. */
  outputDims(dims: ConvDims): [number, number, number, number];
  /**
   * Runs x: [N, C, H, W] through the chain. The result is a view of a buffer the
   * helpers share, overwritten by the next run; given to the next chain as x, it
   * is read in place.
   */
  run(x: Float32Array, dims: ConvDims): Float32Array;
  release(): void;
}

/**
 * The plans of a chain and its number of parts. With a conv the plan is fixed (each
 * thread packs its pieces' weights once); without, `plans` is undefined and each call
 * is planned from its input's channels. Undefined when a chain with a conv cannot split.
 */
function chainPlan(
  ops: readonly ChainOp[],
  threads: number,
): { plans?: SlicePlan[]; parts: number } | undefined {
  if (threads < 2 || ops.length < 1) return undefined;
  const inChannels = chainInChannels(ops);
  if (inChannels === undefined) return { parts: threads };
  const plans = planChain(ops, inChannels, threads);
  return plans && { plans, parts: plans.length };
}

/** The ops with their attributes only: the weights must not stay reachable from the calls. */
function chainShapes(ops: readonly ChainOp[]): ChainOp[] {
  return ops.map((op) =>
    op.op === "conv"
      ? { ...op, layer: { ...op.layer, weights: new Int8Array(0), bias: undefined } }
      : op
  );
}

/** [N, M, OH, OW] after every op of the chain for an input of `dims`. */
function chainOutputDims(
  action: string,
  shapes: readonly ChainOp[],
  dims: ConvDims,
): [number, number, number, number] {
  let d = dims;
  for (const op of shapes) {
    if (op.op === "conv") {
      const g = convGeometry(action, op.layer, d);
      d = [g.n, g.m, g.oh, g.ow];
    } else if (op.op === "pool") {
      const g = poolGeometry(action, op.params, d);
      d = [g.n, g.c, g.oh, g.ow];
    }
  }
  return [...d] as [number, number, number, number];
}

/**
 * Every part's slice on this thread (`local` is part 0; `spare[i]` part i + 1), and
 * parts 1.. in the helpers. A chain's conv weights are small (AlexNet's five convs hold
 * 2.3 MB of the 61), so the spares cost little, and a helper the OS has not scheduled
 * by the time this thread's own share is done costs a serial run instead of a wait.
 */
async function createChainSlices(
  ops: readonly ChainOp[],
  plan: { plans?: SlicePlan[]; parts: number },
  workers: Helper[],
  id: number,
  instance: QExports,
): Promise<{ local: ChainSlice; spare: ChainSlice[] }> {
  const { plans, parts } = plan;
  const local = await createChainSlice(sliceSpec(ops, plans?.[0], 0, parts, false), instance);
  const spare: ChainSlice[] = [];
  for (let i = 1; i < parts; i++) {
    spare.push(await createChainSlice(sliceSpec(ops, plans?.[i], i, parts, false), instance));
  }
  await Promise.all(
    workers.slice(0, parts - 1).map((w, i) =>
      w.addChain(id, sliceSpec(ops, plans?.[i + 1], i + 1, parts, true))
    ),
  );
  return { local, spare };
}

/** Where one chain call reads x and writes y, as buffer ids every helper holds. */
interface ChainIo {
  inId: number;
  inOffset: number;
  outId: number;
  outOffset: number;
  /** x is not in a shared buffer: the caller copies it to the start of `data`. */
  copyIn: boolean;
  data: SharedArrayBuffer;
  y: Float32Array;
}

/** The shared block a chain writes its output into (and copies an outside x into). */
class ChainData {
  #data: SharedArrayBuffer | undefined;
  #id = 0;

  constructor(readonly helpers: KernelHelpers) {}

  /** This call's places, growing (and sharing again) the block when it is too small. */
  place(x: Float32Array, outLen: number): ChainIo {
    // x already in a buffer the helpers hold (the previous chain's output): read in place.
    let inId = x.buffer instanceof SharedArrayBuffer ? this.helpers.bufferId(x.buffer) : undefined;
    if (inId === this.#id) inId = undefined;
    const inBytes = inId === undefined ? Math.ceil((x.length * 4) / 64) * 64 : 0;
    if (!this.#data || this.#data.byteLength < inBytes + outLen * 4) {
      if (this.#data) this.helpers.unshare(this.#data);
      this.#data = new SharedArrayBuffer(Math.ceil((inBytes + outLen * 4) / 65536) * 65536);
      this.#id = this.helpers.share(this.#data);
    }
    return {
      inId: inId ?? this.#id,
      inOffset: inId === undefined ? 0 : x.byteOffset,
      outId: this.#id,
      outOffset: inBytes,
      copyIn: inId === undefined,
      data: this.#data,
      y: new Float32Array(this.#data, inBytes, outLen),
    };
  }

  release(): void {
    if (this.#data) this.helpers.unshare(this.#data);
  }
}

/** Writes each used helper's call fields and starts it; their request numbers. */
function startChain(used: Helper[], layerId: number, dims: ConvDims, io: ChainIo, inLen: number) {
  return used.map((hp) => {
    const ctl = hp.control;
    ctl[CONTROL.LAYER] = layerId;
    [ctl[CONTROL.N], ctl[CONTROL.C], ctl[CONTROL.H], ctl[CONTROL.W]] = dims;
    ctl[CONTROL.IN_BUFFER] = io.inId;
    ctl[CONTROL.IN_OFFSET] = io.inOffset;
    ctl[CONTROL.IN_LEN] = inLen;
    ctl[CONTROL.OUT_BUFFER] = io.outId;
    ctl[CONTROL.OUT_OFFSET] = io.outOffset;
    ctl[CONTROL.OUT_LEN] = io.y.length;
    return hp.start();
  });
}

/** This thread's share, then each helper's: taken back and run here if not yet begun. */
function finishChain(
  slices: { local: ChainSlice; spare: ChainSlice[] },
  used: Helper[],
  started: number[],
  call: { x: Float32Array; dims: ConvDims; y: Float32Array; action: string },
): void {
  const { x, dims, y } = call;
  try {
    slices.local.run(x, dims, y);
  } finally {
    used.forEach((hp, i) => {
      if (hp.steal(started[i])) slices.spare[i].run(x, dims, y);
      else hp.finish(started[i], call.action);
    });
  }
}

/**
 * A chain of quantized Convs, LRN and MaxPool (AlexNet: conv1 -> LRN -> pool1 ->
 * conv2; LRN -> pool2; conv3 -> conv4 -> conv5 -> pool5), split over
 * `helpers.threads` threads by final output channels: each thread runs every step on
 * the channels its share depends on (_split_chain.ts, `planChain`), then one hand-off.
 * Undefined when it cannot be split that way (then run the layers one by one). A
 * chain without a conv is planned per call, from the input's channel count. The
 * main thread's convs go into `instance`.
 */
export async function createSplitChain(
  ops: readonly ChainOp[],
  helpers: KernelHelpers,
  instance: QExports,
): Promise<SplitChainKernel | undefined> {
  const plan = chainPlan(ops, helpers.threads);
  if (!plan) return undefined;
  const shapes = chainShapes(ops);
  const action = "Cannot run the split chain";
  const outputDims = (dims: ConvDims) => chainOutputDims(action, shapes, dims);
  const { helpers: workers, id } = helpers.acquire();
  const data = new ChainData(helpers);
  try {
    const slices = await createChainSlices(ops, plan, workers, id, instance);
    return {
      outputDims,
      run(x, dims) {
        const out = outputDims(dims);
        if (x.length !== dims[0] * dims[1] * dims[2] * dims[3]) {
          throw new RangeError(`${action}: x has ${x.length} values but dims [${dims}] need more`);
        }
        // The helpers with a share of this call (a conv-less chain may not split).
        const parts = (plan.plans ?? plansFor(shapes, dims[1], plan.parts)).length;
        const used = workers.slice(0, parts - 1);
        const io = data.place(x, out[0] * out[1] * out[2] * out[3]);
        if (io.y.length === 0) return io.y;
        if (io.copyIn) new Float32Array(io.data, 0, x.length).set(x);
        const started = startChain(used, id, dims, io, x.length);
        finishChain(slices, used, started, { x, dims, y: io.y, action });
        return io.y;
      },
      release() {
        slices.local.release();
        for (const s of slices.spare) s.release();
        data.release();
        helpers.releaseOne(id);
      },
    };
  } catch (e) {
    helpers.releaseOne(id);
    throw e;
  }
}
