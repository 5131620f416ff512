/**
 * Chains of layers split across threads by channels (split.ts, `createSplitChain`):
 * the plan of which channels each thread computes at each step, and the runner of one
 * thread's slice, used alike by the main thread and by a helper (_split_worker.ts).
 *
 * A thread computes, step by step, every channel its final channels depend on: a
 * grouped conv needs only its groups' input channels, a plain conv all of them, LRN
 * `size - 1` neighbours (halo channels, computed on both sides of a cut), MaxPool the
 * same channels. Each step is the unsplit kernel on fewer channels, so the result is
 * bit for bit the unsplit chain's; LRN slices start at a multiple of `size` for that,
 * because its kernel sums windows in blocks of `size` channels counted from channel 0
 * (wasm/src/window_blocks.rs).
 *
 * @module
 */
import type { QExports } from "./q_wasm.ts";
import { createLrnKernel, type LrnKernel } from "./lrn_wasm.ts";
import type { LrnParams } from "./lrn_reference.ts";
import { createMaxPoolKernel, type MaxPoolKernel } from "./maxpool_wasm.ts";
import type { MaxPoolParams } from "./maxpool_reference.ts";
import { createQConvKernel, type QConvKernel, type QConvKernelOptions } from "./qconv_wasm.ts";
import type { ConvDims, QConvWeights } from "./qconv_reference.ts";

/** One op of a chain: a quantized Conv (input quantization, ReLU), LRN or MaxPool. */
export type ChainOp =
  | {
    op: "conv";
    layer: QConvWeights & Pick<QConvKernelOptions, "sevenBit">;
    xScale: number;
    xZeroPoint: number;
    relu: boolean;
  }
  | { op: "lrn"; params: LrnParams }
  | { op: "pool"; params: MaxPoolParams };

/** Channels [c0, c1). */
export type Channels = readonly [number, number];

/** Output channels [m0, m1) of one group of a conv, read from input channels [c0, c1). */
export interface ConvPiece {
  m0: number;
  m1: number;
  c0: number;
  c1: number;
}

/** One step of a thread's slice: the channels it reads and those it computes. */
export interface SliceStep {
  in: Channels;
  out: Channels;
  /** Conv steps: one piece per group touched. */
  pieces?: ConvPiece[];
}

/** A thread's part of a chain: its steps and the final channels it writes. */
export interface SlicePlan {
  steps: SliceStep[];
  out: Channels;
}

/** Channels an op computes beyond its own over all threads (halos) at which a plan is refused. */
const MAX_EXTRA = 0.15;

/** Channel counts into and out of each op, or undefined when the ops do not fit. */
function channelCounts(ops: readonly ChainOp[], inChannels: number): number[] | undefined {
  const counts = [inChannels];
  for (const op of ops) {
    const c = counts[counts.length - 1];
    if (op.op !== "conv") counts.push(c);
    else {
      const [m, cg] = op.layer.shape;
      if (cg * (op.layer.group ?? 1) !== c) return undefined;
      counts.push(m);
    }
  }
  return counts;
}

/**
 * The input channels of a chain with a conv (LRN and MaxPool keep the count);
 * undefined for a chain of LRN and MaxPool only, which is planned per call.
 */
export function chainInChannels(ops: readonly ChainOp[]): number | undefined {
  const conv = ops.find((op) => op.op === "conv");
  return conv?.op === "conv" ? conv.layer.shape[1] * (conv.layer.group ?? 1) : undefined;
}

/** What one thread computes for final channels `want`, walking the chain backwards. */
function sliceFor(ops: readonly ChainOp[], counts: number[], want: Channels): SlicePlan {
  const steps: SliceStep[] = [];
  let need = want;
  for (let i = ops.length - 1; i >= 0; i--) {
    const op = ops[i];
    if (op.op === "pool") steps.push({ in: need, out: need });
    else if (op.op === "lrn") {
      const before = (op.params.size - 1) >> 1, after = op.params.size - 1 - before;
      let lo = Math.max(0, need[0] - before);
      lo -= lo % op.params.size;
      const range = [lo, Math.min(counts[i], need[1] + after)] as const;
      steps.push({ in: range, out: range });
    } else {
      const [m, cg] = op.layer.shape;
      const group = op.layer.group ?? 1, mg = m / group;
      const pieces: ConvPiece[] = [];
      for (let g = Math.floor(need[0] / mg); g * mg < need[1]; g++) {
        const [c0, c1] = group === 1 ? [0, counts[i]] : [g * cg, (g + 1) * cg];
        pieces.push({ m0: Math.max(need[0], g * mg), m1: Math.min(need[1], (g + 1) * mg), c0, c1 });
      }
      steps.push({ in: [pieces[0].c0, pieces[pieces.length - 1].c1], out: need, pieces });
    }
    need = steps[steps.length - 1].in;
  }
  return { steps: steps.reverse(), out: want };
}

/** Whether a plan's halos and shared inputs stay cheap (see {@linkcode planChain}). */
function cheap(ops: readonly ChainOp[], counts: number[], plans: SlicePlan[]): boolean {
  return ops.every((op, i) => {
    const computed = plans.reduce((sum, p) => {
      const s = p.steps[i];
      return sum + (s.pieces ?? [{ m0: s.out[0], m1: s.out[1] }])
        .reduce((r, piece) => r + piece.m1 - piece.m0, 0);
    }, 0);
    if (computed > counts[i + 1] * (1 + MAX_EXTRA)) return false;
    if (op.op !== "conv" || (op.layer.group ?? 1) === 1) return true;
    // A part of a group costs that group's whole im2col: only whole groups.
    const mg = op.layer.shape[0] / op.layer.group!;
    return plans.every((p) => p.steps[i].pieces!.every((piece) => piece.m1 - piece.m0 === mg));
  });
}

/**
 * Splits a chain's final channels into `parts` ranges (multiples of 4) and works out
 * what each thread computes. Undefined when the ops do not fit together, fewer than
 * two parts result, or splitting costs too much: an op would compute more than 15%
 * more channels than it has over all threads (halos; a whole layer on every thread),
 * or a thread would compute part of a group of a grouped conv (that group's im2col
 * for a few rows: conv2's halo for LRN2 costs ~6% of conv2).
 *
 * @example
 * ```ts
 * // conv (3 -> 96 channels) then LRN of size 5: the halo goes to both threads.
 * const plans = planChain([conv, { op: "lrn", params: { size: 5 } }], 3, 2);
 * plans?.map((p) => p.steps[0].out); // [[0, 50], [45, 96]]
 * ```
 */
export function planChain(
  ops: readonly ChainOp[],
  inChannels: number,
  parts: number,
): SlicePlan[] | undefined {
  const counts = channelCounts(ops, inChannels);
  if (!counts || ops.length === 0 || parts < 2) return undefined;
  const total = counts[counts.length - 1];
  const step = Math.ceil(total / parts / 4) * 4;
  const plans: SlicePlan[] = [];
  for (let c0 = 0; c0 < total; c0 += step) {
    plans.push(sliceFor(ops, counts, [c0, Math.min(total, c0 + step)]));
  }
  return plans.length >= 2 && cheap(ops, counts, plans) ? plans : undefined;
}

/**
 * The plans for a call with `inChannels` input channels: planChain's, or when it
 * declines, one plan for the whole chain (the calling thread runs all of it).
 */
export function plansFor(ops: readonly ChainOp[], inChannels: number, parts: number): SlicePlan[] {
  const counts = channelCounts(ops, inChannels);
  if (!counts) {
    throw new RangeError(`Cannot run the split chain: ${inChannels} input channels do not fit it`);
  }
  return planChain(ops, inChannels, parts) ??
    [sliceFor(ops, counts, [0, counts[counts.length - 1]])];
}

/** A conv piece's own layer: rows [m0, m1) of one group, as a one-group conv. */
export function pieceLayer(layer: QConvWeights, piece: ConvPiece, copy: boolean): QConvWeights {
  const [, cg, kh, kw] = layer.shape;
  const per = cg * kh * kw;
  const { m0, m1 } = piece;
  return {
    ...layer,
    weights: copy
      ? layer.weights.slice(m0 * per, m1 * per)
      : layer.weights.subarray(m0 * per, m1 * per),
    shape: [m1 - m0, cg, kh, kw],
    weightScales: layer.weightScales.slice(m0, m1),
    bias: layer.bias?.slice(m0, m1),
    group: 1,
  };
}

/** An op as a thread gets it: a conv with the layers of its pieces only. */
export type SliceOp =
  | { op: "conv"; layers: QConvWeights[]; xScale: number; xZeroPoint: number; relu: boolean }
  | { op: "lrn"; params: LrnParams }
  | { op: "pool"; params: MaxPoolParams };

/** A thread's part of a chain: its ops and its plan (or how to make it per call). */
export interface SliceSpec {
  ops: SliceOp[];
  /** Chains with a conv: the fixed plan. Without: worked out per call from C. */
  plan?: SlicePlan;
  /** This thread's index among `parts`. */
  part: number;
  parts: number;
}

/** Makes a thread's spec; `copy`: its weights copied (to transfer) or views. */
export function sliceSpec(
  ops: readonly ChainOp[],
  plan: SlicePlan | undefined,
  part: number,
  parts: number,
  copy: boolean,
): SliceSpec {
  const sliceOps = ops.map((op, i): SliceOp => {
    if (op.op !== "conv") return op;
    const { xScale, xZeroPoint, relu } = op;
    const layers = plan!.steps[i].pieces!.map((p) => pieceLayer(op.layer, p, copy));
    return { op: "conv", layers, xScale, xZeroPoint, relu };
  });
  return { ops: sliceOps, plan, part, parts };
}

type OpKernel =
  | { op: "conv"; spec: SliceOp & { op: "conv" }; kernels: QConvKernel[] }
  | { op: "lrn"; spec: SliceOp & { op: "lrn" }; kernel: LrnKernel }
  | { op: "pool"; spec: SliceOp & { op: "pool" }; kernel: MaxPoolKernel };

/** One thread's part of a chain, ready to run. Not reentrant. */
export interface ChainSlice {
  /**
   * Runs x: [N, C, H, W] (every input channel; this slice reads its own) and writes
   * this slice's final channels of y: [N, M, OH, OW], image by image.
   */
  run(x: Float32Array, dims: ConvDims, y: Float32Array): void;
  release(): void;
}

/**
 * Builds a slice's kernels: convs in `instance` (shared with the thread's other
 * layers), LRN and MaxPool in their own instances. The spec's weights are packed and
 * may be dropped once this resolves.
 */
export async function createChainSlice(spec: SliceSpec, instance: QExports): Promise<ChainSlice> {
  const kernels: OpKernel[] = [];
  for (const op of spec.ops) {
    if (op.op === "conv") {
      const convs = [];
      for (const layer of op.layers) convs.push(await createQConvKernel({ ...layer, instance }));
      kernels.push({ op: "conv", spec: op, kernels: convs });
    } else if (op.op === "lrn") {
      kernels.push({ op: "lrn", spec: op, kernel: await createLrnKernel() });
    } else kernels.push({ op: "pool", spec: op, kernel: await createMaxPoolKernel(op.params) });
  }
  // Conv-less chains: the plan for the last channel count seen.
  let cached: { c: number; plan: SlicePlan | undefined } | undefined;
  const planOf = (c: number) => {
    if (spec.plan) return spec.plan;
    if (cached?.c !== c) {
      const ops = spec.ops as (SliceOp & { op: "lrn" | "pool" })[];
      cached = { c, plan: plansFor(ops, c, spec.parts)[spec.part] };
    }
    return cached.plan;
  };
  // Each step's output, kept between calls: [channels of step.out, OH, OW] of one image.
  const scratch = kernels.map(() => new Float32Array(0));
  const buffer = (i: number, len: number) => {
    if (scratch[i].length < len) scratch[i] = new Float32Array(len);
    return scratch[i].subarray(0, len);
  };
  const last = kernels.length - 1;
  return {
    run(x, dims, y) {
      const plan = planOf(dims[1]);
      if (!plan) return;
      const [f0, f1] = plan.out;
      // The last step writes straight into y when it computes exactly the final channels.
      const direct = plan.steps[last].out[0] === f0 && plan.steps[last].out[1] === f1;
      const [n, c, h, w] = dims;
      const inImage = c * h * w, outImage = y.length / n;
      for (let b = 0; b < n; b++) {
        // cur: channels [cur0, ...) of one image, planes of ch * cw values.
        let cur = x.subarray(b * inImage, (b + 1) * inImage);
        let cur0 = 0, ch = h, cw = w;
        const target = (i: number, plane: number) => {
          const [o0, o1] = plan.steps[i].out;
          return i === last && direct
            ? y.subarray(b * outImage + f0 * plane, b * outImage + f1 * plane)
            : buffer(i, (o1 - o0) * plane);
        };
        for (let i = 0; i <= last; i++) {
          const k = kernels[i], step = plan.steps[i];
          const [i0, i1] = step.in, o0 = step.out[0];
          const input = cur.subarray((i0 - cur0) * ch * cw, (i1 - cur0) * ch * cw);
          const inDims = [1, i1 - i0, ch, cw] as const;
          if (k.op === "conv") {
            const pieces = step.pieces!;
            const [, , oh, ow] = k.kernels[0].outputDims([1, pieces[0].c1 - pieces[0].c0, ch, cw]);
            const p = oh * ow, out = target(i, p);
            pieces.forEach((piece, j) => {
              k.kernels[j].run(
                input.subarray((piece.c0 - i0) * ch * cw, (piece.c1 - i0) * ch * cw),
                [1, piece.c1 - piece.c0, ch, cw],
                k.spec.xScale,
                k.spec.xZeroPoint,
                k.spec.relu,
                out.subarray((piece.m0 - o0) * p, (piece.m1 - o0) * p),
              );
            });
            [cur, ch, cw] = [out, oh, ow];
          } else if (k.op === "lrn") {
            const out = target(i, ch * cw);
            k.kernel.run(input, inDims, k.spec.params, out);
            cur = out;
          } else {
            const [, , oh, ow] = k.kernel.outputDims(inDims);
            const out = target(i, oh * ow);
            k.kernel.run(input, inDims, out);
            [cur, ch, cw] = [out, oh, ow];
          }
          cur0 = o0;
        }
        if (!direct) {
          const plane = ch * cw;
          y.set(cur.subarray((f0 - cur0) * plane, (f1 - cur0) * plane), b * outImage + f0 * plane);
        }
      }
    },
    release() {
      for (const k of kernels) if (k.op === "conv") { for (const c of k.kernels) c.release(); }
    },
  };
}
