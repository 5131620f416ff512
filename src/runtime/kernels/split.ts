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
import { CONTROL } from "./_split_protocol.ts";
import type { QExports } from "./q_wasm.ts";
import type { ChainOp } from "./_split_chain.ts";
import { createSplitChain, type SplitChainKernel } from "./_split_chain_kernel.ts";
import { KernelHelpers } from "./_split_helpers.ts";
import { runSplit, type SplitQuant, type SplitRun } from "./_split_run.ts";
import { convSlices, type Cut, cutsOf, linearSlices } from "./_split_slices.ts";
import { createQConvKernel, type QConvKernel } from "./qconv_wasm.ts";
import { createQLinearKernel, type QLinearKernel } from "./qlinear_wasm.ts";
import { type ConvDims, convGeometry, type QConvWeights } from "./qconv_reference.ts";
import type { QLinearWeights } from "./_q_args.ts";

export { convSlices, createSplitChain, KernelHelpers, linearSlices };
export type { ChainOp, SplitChainKernel };

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

/** A conv layer's attributes without its weights (they must not stay reachable). */
function convAttrs(layer: QConvWeights): QConvWeights {
  const { shape, group, strides, pads, dilations } = layer;
  return {
    weights: new Int8Array(0),
    weightScales: new Float32Array(0),
    shape,
    group,
    strides,
    pads,
    dilations,
  };
}

/** The shape of one split Conv call: per slice, its channels of x: [N, C, H, W]. */
function convCall(
  g: ReturnType<typeof convGeometry>,
  cuts: Cut[],
  local: QConvKernel,
  quant: SplitQuant,
): SplitRun {
  const hw = g.h * g.w, p = g.oh * g.ow;
  return {
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
      const dims = [g.n, cuts[0].c1 - cuts[0].c0, g.h, g.w] as const;
      local.run(lx, dims, quant.xScale, quant.xZeroPoint, quant.relu, ly);
    },
  };
}

/** Checks a split Conv call's x and out; the output array (out or a new one). */
function convOutput(
  action: string,
  g: ReturnType<typeof convGeometry>,
  x: Float32Array,
  dims: ConvDims,
  out?: Float32Array,
): Float32Array {
  if (x.length !== g.n * g.c * g.h * g.w) {
    throw new RangeError(`${action}: x has ${x.length} values but dims [${dims}] need more`);
  }
  const len = g.n * g.m * g.oh * g.ow;
  const y = out ?? new Float32Array(len);
  if (y.length !== len) throw new RangeError(`${action}: out must hold ${len} values`);
  return y;
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
  const attrs = convAttrs(layer);
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
        const y = convOutput(action, g, x, dims, out);
        if (y.length === 0) return y;
        const quant = { xScale, xZeroPoint, relu };
        const call = convCall(g, cuts, local, quant);
        runSplit(x, y, {
          action,
          slices: cuts,
          helpers: workers,
          layerId: id,
          call,
          quant,
          local: buffers,
        });
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

/** The shape of one split Gemm call: every slice reads all of x: [N, K]. */
function linearCall(
  n: number,
  layer: { m: number; k: number },
  cuts: Cut[],
  local: QLinearKernel,
  quant: SplitQuant,
): SplitRun {
  const { m, k } = layer;
  return {
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
      local.run(lx, n, quant.xScale, quant.xZeroPoint, quant.relu, ly);
    },
  };
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
        const quant = { xScale, xZeroPoint, relu };
        const call = linearCall(n, { m, k }, cuts, local, quant);
        runSplit(x, y, {
          action,
          slices: cuts,
          helpers: workers,
          layerId: id,
          call,
          quant,
          local: buffers,
        });
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
