/**
 * Quantized Conv and Gemm layers split across threads without shared WebAssembly
 * memory: each layer's output channels are cut into slices, one per thread; the main
 * thread runs slice 0 in its own instance and each helper Worker holds and runs one
 * other slice (so no weight is held twice). Per run, the input goes to the helpers
 * through a SharedArrayBuffer, they are woken with `Atomics.notify`, and the main
 * thread blocks in `Atomics.wait` after its own slice until their outputs are in.
 *
 * Grouped convolutions (AlexNet's conv2, conv4, conv5) split by groups, so each
 * helper also gets only its groups' input channels; others split their output
 * channels in multiples of 4. Each slice is the same kernel on fewer channels, so
 * the result is bit for bit the unsplit kernel's (tests/runtime/kernels/split_test.ts).
 *
 * A chain of layers (Conv, LRN, MaxPool: {@linkcode createSplitChain}) goes in one
 * hand-off instead of one per layer: each thread runs every layer on the channels
 * its share of the final output depends on (_split_chain.ts), reading x from and
 * writing y into buffers every helper holds, so consecutive chains pass activations
 * without copies through the main thread.
 *
 * @module
 */
import { CONTROL, CONTROL_WORDS, spinFor } from "./_split_protocol.ts";
import type { QExports } from "./q_wasm.ts";
import {
  chainInChannels,
  type ChainOp,
  type ChainSlice,
  createChainSlice,
  planChain,
  plansFor,
  type SliceSpec,
  sliceSpec,
} from "./_split_chain.ts";
import { poolGeometry } from "./maxpool_reference.ts";
import { createQConvKernel } from "./qconv_wasm.ts";
import { createQLinearKernel } from "./qlinear_wasm.ts";
import { type ConvDims, convGeometry, type QConvWeights } from "./qconv_reference.ts";
import type { QLinearWeights } from "./qlinear_reference.ts";

/**
 * The Web Worker constructor, kept at load: when onnxruntime-web's wasm glue first
 * loads under Deno it takes itself for Node.js and sets `globalThis.Worker` to
 * `worker_threads.Worker` (whose workers have no `self`).
 */
const WebWorker: typeof Worker = globalThis.Worker;

/** How long the main thread waits for a helper before it gives up (ms). */
const HELPER_TIMEOUT_MS = 60_000;

/** One helper Worker and its shared blocks. */
class Helper {
  readonly worker: Worker;
  readonly control = new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));
  readonly controlF32 = new Float32Array(this.control.buffer);
  data = new SharedArrayBuffer(0);
  #replies = new Map<number, (error?: string) => void>();
  #request = 0;
  #ack = 0;

  constructor() {
    if (WebWorker.name === "NodeWorker") {
      throw new TypeError(
        "Cannot start a kernel helper: import src/runtime/kernels/split.ts before " +
          "onnxruntime-web loads its WebAssembly (it replaces globalThis.Worker)",
      );
    }
    this.worker = new WebWorker(new URL("./_split_worker.ts", import.meta.url), {
      type: "module",
    });
    this.worker.onmessage = (e: MessageEvent) => {
      this.#replies.get(e.data.id)?.(e.data.error);
      this.#replies.delete(e.data.id);
    };
    this.worker.postMessage({ op: "init", control: this.control.buffer });
  }

  /** Creates a layer slice in the worker; the weights are transferred, not copied. */
  add(id: number, op: "conv" | "gemm", layer: QConvWeights | QLinearWeights): Promise<void> {
    return this.#create({ op, id, layer }, [layer.weights.buffer as ArrayBuffer]);
  }

  /** Creates a chain slice in the worker; its pieces' weights are transferred. */
  addChain(id: number, spec: SliceSpec): Promise<void> {
    const weights = spec.ops.flatMap((s) =>
      s.op === "conv" ? s.layers.map((l) => l.weights.buffer as ArrayBuffer) : []
    );
    return this.#create({ op: "chain", id, spec }, weights);
  }

  #create(
    message: { id: number; op: string; [k: string]: unknown },
    transfer: ArrayBuffer[],
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#replies.set(message.id, (error) => {
        if (error) reject(new Error(error));
        else resolve();
      });
      this.worker.postMessage(message, transfer);
      this.kick();
    });
  }

  /** Sends the helper to its event loop (from `Atomics.wait`), where messages wait. */
  kick(): void {
    Atomics.notify(this.control, CONTROL.REQUEST);
  }

  /** Posts a set-up message and blocks until the helper has handled it. */
  acked(message: Record<string, unknown>, action: string): void {
    const ack = ++this.#ack;
    this.worker.postMessage({ ...message, ack });
    const deadline = performance.now() + HELPER_TIMEOUT_MS;
    // Kicked again each millisecond: a helper just entering Atomics.wait misses a notify.
    while (Atomics.load(this.control, CONTROL.ACK) !== ack) {
      if (performance.now() > deadline) {
        throw new Error(`${action}: a kernel helper did not answer`);
      }
      this.kick();
      Atomics.wait(this.control, CONTROL.ACK, Atomics.load(this.control, CONTROL.ACK), 1);
    }
  }

  /** A data block of at least `bytes`, handed to the worker (blocks until it has it). */
  reserve(bytes: number): SharedArrayBuffer {
    if (this.data.byteLength < bytes) {
      this.data = new SharedArrayBuffer(Math.ceil(bytes / 65536) * 65536);
      this.acked({ op: "data", data: this.data }, "Cannot hand a kernel helper its buffer");
    }
    return this.data;
  }

  /** Starts the layer whose fields and input the caller wrote. */
  start(): number {
    const request = ++this.#request;
    Atomics.store(this.control, CONTROL.REQUEST, request);
    Atomics.notify(this.control, CONTROL.REQUEST);
    return request;
  }

  /** Claims request `request` for the main thread; false when the helper has it. */
  steal(request: number): boolean {
    return Atomics.compareExchange(this.control, CONTROL.CLAIM, request - 1, request) ===
      request - 1;
  }

  /** Blocks until request `request` is done; throws when the helper failed. */
  finish(request: number, action: string): void {
    spinFor(this.control, CONTROL.DONE, (done) => done === request);
    waitFor(this.control, CONTROL.DONE, request, action);
    if (Atomics.load(this.control, CONTROL.STATUS) !== 0) {
      throw new Error(`${action}: a kernel helper failed (its error is in the log)`);
    }
  }

  drop(id: number): void {
    this.worker.postMessage({ op: "drop", id });
  }

  terminate(): void {
    Atomics.store(this.control, CONTROL.QUIT, 1);
    this.kick();
    this.worker.terminate();
  }
}

/** Blocks the thread until `words[index]` equals `value` (or throws after the timeout). */
function waitFor(words: Int32Array, index: number, value: number, action: string): void {
  const deadline = performance.now() + HELPER_TIMEOUT_MS;
  for (;;) {
    const now = Atomics.load(words, index);
    if (now === value) return;
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`${action}: a kernel helper did not answer`);
    Atomics.wait(words, index, now, left);
  }
}

/**
 * Helper Workers for splitting layers across `threads` threads (the main thread is
 * one of them). Made lazily: nothing starts until the first split layer.
 *
 * @example
 * ```ts
 * const helpers = new KernelHelpers(2);
 * const conv = await createSplitConvKernel(layer, helpers); // half in a Worker
 * conv.release(); // the last release stops the Worker
 * ```
 */
export class KernelHelpers {
  readonly threads: number;
  #helpers: Helper[] | undefined;
  #nextId = 1;
  #users = 0;
  /** Buffers every helper holds, by id (chains read and write them). */
  #buffers = new Map<ArrayBufferLike, number>();
  #nextBuffer = 1;

  constructor(threads: number) {
    if (!Number.isInteger(threads) || threads < 1) {
      throw new RangeError(`Cannot start kernel helpers: threads must be >= 1, got ${threads}`);
    }
    this.threads = threads;
  }

  /** @internal */
  acquire(): { helpers: Helper[]; id: number } {
    this.#helpers ??= Array.from({ length: this.threads - 1 }, () => new Helper());
    this.#users++;
    return { helpers: this.#helpers, id: this.#nextId++ };
  }

  /** @internal */
  releaseOne(id: number): void {
    if (!this.#helpers) return;
    for (const h of this.#helpers) h.drop(id);
    if (--this.#users === 0) {
      for (const h of this.#helpers) h.terminate();
      this.#helpers = undefined;
      this.#buffers.clear();
    }
  }

  /** @internal Hands `data` to every helper (blocks until they have it); its id. */
  share(data: SharedArrayBuffer): number {
    const id = this.#nextBuffer++;
    for (const h of this.#helpers ?? []) {
      h.acked({ op: "buffer", id, data }, "Cannot hand a kernel helper a shared buffer");
    }
    this.#buffers.set(data, id);
    return id;
  }

  /** @internal Lets the helpers drop a buffer from {@linkcode share}. */
  unshare(data: SharedArrayBuffer): void {
    const id = this.#buffers.get(data);
    if (id === undefined) return;
    this.#buffers.delete(data);
    for (const h of this.#helpers ?? []) h.worker.postMessage({ op: "unbuffer", id });
  }

  /** @internal The id of a shared buffer every helper holds, if `data` is one. */
  bufferId(data: ArrayBufferLike): number | undefined {
    return this.#buffers.get(data);
  }
}

/** Where a slice sits: output channels [m0, m1) from input channels [c0, c1). */
interface Cut {
  m0: number;
  m1: number;
  c0: number;
  c1: number;
}

/** A slice: its cut and its layer. */
interface Slice<L> extends Cut {
  layer: L;
}

/** The cuts alone, for the calls: a slice's layer would keep its weights reachable. */
const cutsOf = (slices: Cut[]): Cut[] => slices.map(({ m0, m1, c0, c1 }) => ({ m0, m1, c0, c1 }));

/** Row ranges of M split in `parts`, each a multiple of 4 except the last; no empty ones. */
function rowRanges(m: number, parts: number): [number, number][] {
  const step = Math.ceil(m / parts / 4) * 4;
  const ranges: [number, number][] = [];
  for (let m0 = 0; m0 < m; m0 += step) ranges.push([m0, Math.min(m, m0 + step)]);
  return ranges;
}

/**
 * A Conv layer cut into at most `parts` slices: by groups when the groups divide
 * evenly, else (one group) by output channels. Undefined when it cannot be cut.
 * Slice 0's weights are a view of the layer's; the others' are copies, which
 * {@linkcode KernelHelpers} transfers to the helpers.
 */
export function convSlices(layer: QConvWeights, parts: number): Slice<QConvWeights>[] | undefined {
  const [m, cg, kh, kw] = layer.shape;
  const group = layer.group ?? 1;
  const per = cg * kh * kw;
  const c = cg * group;
  const slice = (m0: number, m1: number, c0: number, c1: number, g: number) => ({
    m0,
    m1,
    c0,
    c1,
    layer: {
      ...layer,
      // Slice 0 stays on this thread: a view. The others are copies, transferred.
      weights: m0 === 0
        ? layer.weights.subarray(0, m1 * per)
        : layer.weights.slice(m0 * per, m1 * per),
      shape: [m1 - m0, cg, kh, kw] as const,
      weightScales: layer.weightScales.slice(m0, m1),
      bias: layer.bias?.slice(m0, m1),
      group: g,
    },
  });
  if (group > 1 && group % parts === 0) {
    const gp = group / parts;
    return Array.from({ length: parts }, (_, i) => {
      const [m0, m1] = [(i * m) / parts, ((i + 1) * m) / parts];
      return slice(m0, m1, (i * c) / parts, ((i + 1) * c) / parts, gp);
    });
  }
  if (group !== 1) return undefined;
  const ranges = rowRanges(m, parts);
  return ranges.length < 2 ? undefined : ranges.map(([m0, m1]) => slice(m0, m1, 0, c, 1));
}

/** A Gemm layer cut into at most `parts` slices of output rows; undefined when M < 8. */
export function linearSlices(
  layer: QLinearWeights,
  parts: number,
): Slice<QLinearWeights>[] | undefined {
  const ranges = rowRanges(layer.m, parts);
  if (ranges.length < 2) return undefined;
  return ranges.map(([m0, m1]) => ({
    m0,
    m1,
    c0: 0,
    c1: layer.k,
    layer: {
      ...layer,
      weights: m0 === 0
        ? layer.weights.subarray(0, m1 * layer.k)
        : layer.weights.slice(m0 * layer.k, m1 * layer.k),
      m: m1 - m0,
      weightScales: layer.weightScales.slice(m0, m1),
      bias: layer.bias?.slice(m0, m1),
    },
  }));
}

/** Copies x[n, c0:c1, ...] for every n into dst ([N, c1 - c0, inner]). */
function gather(
  x: Float32Array,
  n: number,
  c: number,
  inner: number,
  s: Cut,
  dst: Float32Array,
) {
  const width = (s.c1 - s.c0) * inner;
  for (let b = 0; b < n; b++) {
    dst.set(x.subarray((b * c + s.c0) * inner, (b * c + s.c1) * inner), b * width);
  }
}

/** Copies src ([N, m1 - m0, inner]) into y[n, m0:m1, ...] for every n. */
function scatter(
  src: Float32Array,
  n: number,
  m: number,
  inner: number,
  s: Cut,
  y: Float32Array,
) {
  const width = (s.m1 - s.m0) * inner;
  for (let b = 0; b < n; b++) {
    y.set(src.subarray(b * width, (b + 1) * width), (b * m + s.m0) * inner);
  }
}

/** The part of a split kernel that the main thread and helpers share. */
interface SplitRun {
  /** Per slice: input values and output values for this call. */
  sizes(slice: number): { inLen: number; outLen: number };
  /** Writes the call's shape fields for the helper of slice `slice`. */
  fields(control: Int32Array, slice: number): void;
  /** Runs slice 0 on the main thread: x sliced, into `out`. */
  runLocal(x: Float32Array, out: Float32Array): void;
  n: number;
  inChannels: number;
  outChannels: number;
  inInner: number;
  outInner: number;
}

/** Runs one call over every slice; y gets the assembled output. */
function runSplit(
  action: string,
  slices: Cut[],
  helpers: Helper[],
  layerId: number,
  call: SplitRun,
  quant: { xScale: number; xZeroPoint: number; relu: boolean },
  x: Float32Array,
  y: Float32Array,
  local: { x: Float32Array; y: Float32Array },
): void {
  const started: number[] = [];
  for (let i = 1; i < slices.length; i++) {
    const h = helpers[i - 1];
    const { inLen, outLen } = call.sizes(i);
    const outOffset = Math.ceil((inLen * 4) / 64) * 64;
    const data = h.reserve(outOffset + outLen * 4);
    gather(x, call.n, call.inChannels, call.inInner, slices[i], new Float32Array(data, 0, inLen));
    const c = h.control;
    call.fields(c, i);
    c[CONTROL.LAYER] = layerId;
    c[CONTROL.IN_LEN] = inLen;
    c[CONTROL.OUT_LEN] = outLen;
    c[CONTROL.OUT_OFFSET] = outOffset;
    c[CONTROL.RELU] = quant.relu ? 1 : 0;
    c[CONTROL.X_ZERO] = quant.xZeroPoint;
    h.controlF32[CONTROL.X_SCALE] = quant.xScale;
    started.push(h.start());
  }
  const s0 = slices[0];
  const { inLen, outLen } = call.sizes(0);
  const whole = s0.c0 === 0 && s0.c1 === call.inChannels;
  // One image: slice 0's channels are contiguous in x and in y, so it reads and writes
  // them in place; a batch gathers and scatters them per image.
  const single = call.n === 1;
  let lx = x;
  if (!whole && single) lx = x.subarray(s0.c0 * call.inInner, s0.c1 * call.inInner);
  else if (!whole) {
    if (local.x.length < inLen) local.x = new Float32Array(inLen);
    lx = local.x.subarray(0, inLen);
    gather(x, call.n, call.inChannels, call.inInner, s0, lx);
  }
  let ly: Float32Array;
  if (single) ly = y.subarray(s0.m0 * call.outInner, s0.m1 * call.outInner);
  else {
    if (local.y.length < outLen) local.y = new Float32Array(outLen);
    ly = local.y.subarray(0, outLen);
  }
  try {
    call.runLocal(lx, ly);
  } finally {
    // Wait for the helpers even when the local slice failed, so no run overlaps the next.
    for (let i = 1; i < slices.length; i++) helpers[i - 1].finish(started[i - 1], action);
  }
  if (!single) scatter(ly, call.n, call.outChannels, call.outInner, s0, y);
  for (let i = 1; i < slices.length; i++) {
    const h = helpers[i - 1];
    const c = h.control;
    const out = new Float32Array(h.data, c[CONTROL.OUT_OFFSET], c[CONTROL.OUT_LEN]);
    scatter(out, call.n, call.outChannels, call.outInner, slices[i], y);
  }
}

/** A quantized Conv split across threads, with the interface of `QConvKernel.run`. */
export interface SplitConvKernel {
  outputDims(dims: ConvDims): [number, number, number, number];
  run(
    x: Float32Array,
    dims: ConvDims,
    xScale: number,
    xZeroPoint: number,
    relu: boolean,
    out?: Float32Array,
  ): Float32Array;
  release(): void;
}

/**
 * The Conv layer split over `helpers.threads` threads, or undefined when it cannot be
 * split (then use createQConvKernel). The main thread's slice goes into `instance`
 * when given (see `QConvKernelOptions.instance`); each helper shares one instance
 * among its slices.
 */
export async function createSplitConvKernel(
  layer: QConvWeights,
  helpers: KernelHelpers,
  instance?: QExports,
): Promise<SplitConvKernel | undefined> {
  const slices = helpers.threads > 1 ? convSlices(layer, helpers.threads) : undefined;
  if (!slices) return undefined;
  const { helpers: workers, id } = helpers.acquire();
  // The calls need the attributes only; the weights must not stay reachable from here.
  const { shape, group, strides, pads, dilations } = layer;
  const attrs = {
    weights: new Int8Array(0),
    weightScales: new Float32Array(0),
    shape,
    group,
    strides,
    pads,
    dilations,
  };
  try {
    const local = await createQConvKernel({ ...slices[0].layer, instance });
    await Promise.all(slices.slice(1).map((s, i) => workers[i].add(id, "conv", s.layer)));
    const cuts = cutsOf(slices);
    const buffers = { x: new Float32Array(0), y: new Float32Array(0) };
    const action = "Cannot run the split quantized Conv";
    return {
      outputDims(dims) {
        const g = convGeometry("Cannot size the quantized Conv output", attrs, dims);
        return [g.n, g.m, g.oh, g.ow];
      },
      run(x, dims, xScale, xZeroPoint, relu, out) {
        const g = convGeometry(action, attrs, dims);
        if (x.length !== g.n * g.c * g.h * g.w) {
          throw new RangeError(`${action}: x has ${x.length} values but dims [${dims}] need more`);
        }
        const y = out ?? new Float32Array(g.n * g.m * g.oh * g.ow);
        if (y.length !== g.n * g.m * g.oh * g.ow) {
          throw new RangeError(`${action}: out must hold ${g.n * g.m * g.oh * g.ow} values`);
        }
        if (y.length === 0) return y;
        const hw = g.h * g.w, p = g.oh * g.ow;
        const call: SplitRun = {
          n: g.n,
          inChannels: g.c,
          outChannels: g.m,
          inInner: hw,
          outInner: p,
          sizes: (i) => ({
            inLen: g.n * (cuts[i].c1 - cuts[i].c0) * hw,
            outLen: g.n * (cuts[i].m1 - cuts[i].m0) * p,
          }),
          fields(c, i) {
            c[CONTROL.N] = g.n;
            c[CONTROL.C] = cuts[i].c1 - cuts[i].c0;
            c[CONTROL.H] = g.h;
            c[CONTROL.W] = g.w;
          },
          runLocal(lx, ly) {
            local.run(
              lx,
              [g.n, cuts[0].c1 - cuts[0].c0, g.h, g.w],
              xScale,
              xZeroPoint,
              relu,
              ly,
            );
          },
        };
        runSplit(action, cuts, workers, id, call, { xScale, xZeroPoint, relu }, x, y, buffers);
        return y;
      },
      release() {
        local.release();
        helpers.releaseOne(id);
      },
    };
  } catch (e) {
    helpers.releaseOne(id);
    throw e;
  }
}

/** A quantized Gemm split across threads, with the interface of `QLinearKernel.run`. */
export interface SplitLinearKernel {
  run(
    x: Float32Array,
    n: number,
    xScale: number,
    xZeroPoint: number,
    relu: boolean,
    out?: Float32Array,
  ): Float32Array;
  release(): void;
}

/** The Gemm layer split over `helpers.threads` threads, or undefined when it cannot be. */
export async function createSplitLinearKernel(
  layer: QLinearWeights,
  helpers: KernelHelpers,
  instance?: QExports,
): Promise<SplitLinearKernel | undefined> {
  const slices = helpers.threads > 1 ? linearSlices(layer, helpers.threads) : undefined;
  if (!slices) return undefined;
  const { helpers: workers, id } = helpers.acquire();
  try {
    const local = await createQLinearKernel({ ...slices[0].layer, instance });
    await Promise.all(slices.slice(1).map((s, i) => workers[i].add(id, "gemm", s.layer)));
    const cuts = cutsOf(slices);
    const buffers = { x: new Float32Array(0), y: new Float32Array(0) };
    const action = "Cannot run the split quantized Gemm";
    const { m, k } = layer;
    return {
      run(x, n, xScale, xZeroPoint, relu, out) {
        if (!Number.isInteger(n) || n < 0 || x.length !== n * k) {
          throw new RangeError(
            `${action}: x has ${x.length} values but [${n}, ${k}] needs ${n * k}`,
          );
        }
        const y = out ?? new Float32Array(n * m);
        if (y.length !== n * m) throw new RangeError(`${action}: out must hold ${n * m} values`);
        if (n === 0) return y;
        const call: SplitRun = {
          n,
          inChannels: k,
          outChannels: m,
          inInner: 1,
          outInner: 1,
          sizes: (i) => ({ inLen: n * k, outLen: n * (cuts[i].m1 - cuts[i].m0) }),
          fields(c) {
            c[CONTROL.N] = n;
          },
          runLocal(lx, ly) {
            local.run(lx, n, xScale, xZeroPoint, relu, ly);
          },
        };
        runSplit(action, cuts, workers, id, call, { xScale, xZeroPoint, relu }, x, y, buffers);
        return y;
      },
      release() {
        local.release();
        helpers.releaseOne(id);
      },
    };
  } catch (e) {
    helpers.releaseOne(id);
    throw e;
  }
}

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
  if (helpers.threads < 2 || ops.length < 1) return undefined;
  const inChannels = chainInChannels(ops);
  // With a conv the plan is fixed (each thread packs its pieces' weights once).
  const plans = inChannels === undefined ? undefined : planChain(ops, inChannels, helpers.threads);
  if (inChannels !== undefined && !plans) return undefined;
  const parts = plans?.length ?? helpers.threads;
  // The sizes need the attributes only; the weights must not stay reachable from here.
  const shapes = ops.map((op) =>
    op.op === "conv"
      ? { ...op, layer: { ...op.layer, weights: new Int8Array(0), bias: undefined } }
      : op
  );
  const action = "Cannot run the split chain";
  const outputDims = (dims: ConvDims): [number, number, number, number] => {
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
  };
  const { helpers: workers, id } = helpers.acquire();
  let data: SharedArrayBuffer | undefined;
  let dataId = 0;
  try {
    const local = await createChainSlice(sliceSpec(ops, plans?.[0], 0, parts, false), instance);
    // Every helper's share on this thread too (a chain's conv weights are small: AlexNet's
    // five convs hold 2.3 MB of the 61), so that a helper the OS has not scheduled by the
    // time this thread's own share is done costs a serial run instead of a wait.
    const spare: ChainSlice[] = [];
    for (let i = 1; i < parts; i++) {
      spare.push(await createChainSlice(sliceSpec(ops, plans?.[i], i, parts, false), instance));
    }
    await Promise.all(
      workers.slice(0, parts - 1).map((w, i) =>
        w.addChain(id, sliceSpec(ops, plans?.[i + 1], i + 1, parts, true))
      ),
    );
    return {
      outputDims,
      run(x, dims) {
        const [n, c, h, w] = dims;
        const out = outputDims(dims);
        if (x.length !== n * c * h * w) {
          throw new RangeError(`${action}: x has ${x.length} values but dims [${dims}] need more`);
        }
        const outLen = out[0] * out[1] * out[2] * out[3];
        // The helpers with a share of this call (a conv-less chain may not split).
        const used = workers.slice(0, (plans ?? plansFor(shapes, c, parts)).length - 1);
        // x already in a buffer the helpers hold (the previous chain's output): read in place.
        let inId = x.buffer instanceof SharedArrayBuffer ? helpers.bufferId(x.buffer) : undefined;
        if (inId === dataId) inId = undefined;
        const inBytes = inId === undefined ? Math.ceil((x.length * 4) / 64) * 64 : 0;
        if (!data || data.byteLength < inBytes + outLen * 4) {
          if (data) helpers.unshare(data);
          data = new SharedArrayBuffer(Math.ceil((inBytes + outLen * 4) / 65536) * 65536);
          dataId = helpers.share(data);
        }
        const y = new Float32Array(data, inBytes, outLen);
        if (outLen === 0) return y;
        if (inId === undefined) new Float32Array(data, 0, x.length).set(x);
        const started = used.map((hp) => {
          const ctl = hp.control;
          ctl[CONTROL.LAYER] = id;
          [ctl[CONTROL.N], ctl[CONTROL.C], ctl[CONTROL.H], ctl[CONTROL.W]] = dims;
          ctl[CONTROL.IN_BUFFER] = inId ?? dataId;
          ctl[CONTROL.IN_OFFSET] = inId === undefined ? 0 : x.byteOffset;
          ctl[CONTROL.IN_LEN] = x.length;
          ctl[CONTROL.OUT_BUFFER] = dataId;
          ctl[CONTROL.OUT_OFFSET] = inBytes;
          ctl[CONTROL.OUT_LEN] = outLen;
          return hp.start();
        });
        try {
          local.run(x, dims, y);
        } finally {
          used.forEach((hp, i) => {
            if (hp.steal(started[i])) spare[i].run(x, dims, y);
            else hp.finish(started[i], action);
          });
        }
        return y;
      },
      release() {
        local.release();
        for (const s of spare) s.release();
        if (data) helpers.unshare(data);
        helpers.releaseOne(id);
      },
    };
  } catch (e) {
    helpers.releaseOne(id);
    throw e;
  }
}

export type { ChainOp };
