/**
 * The quantized Conv on the int8 kernel of `wasm/`: x quantized per call, im2col per
 * group, the same int8 GEMM as {@linkcode createQLinearKernel}, float epilogue.
 * {@linkcode qconvReference} is the plain version it must match bit for bit.
 *
 * @module
 */
import { checkQuantizeArgs, outArray } from "./_q_args.ts";
import {
  align16,
  allocStatic,
  checkStatus,
  fits7Bits,
  hasSevenBit,
  instantiateQ,
  IoBlock,
  packedBytes,
  packInto,
  type QExports,
  staticFloats,
  type WasmSource,
} from "./q_wasm.ts";
import {
  checkQConvWeights,
  type ConvDims,
  type ConvGeometry,
  convGeometry,
  type QConvWeights,
} from "./qconv_reference.ts";

/** Options for {@linkcode createQConvKernel}: the layer, and where the module comes from. */
export interface QConvKernelOptions extends QConvWeights {
  /** The module to use instead of wasm/alexnet_kernels.wasm (bytes, compiled, or a URL). */
  wasm?: WasmSource;
  /**
   * An instance shared with other kernels (from `instantiateQ`) instead of a fresh one:
   * the weights stay in it as long as it lives, and the per-call block goes back to
   * its heap after each call. `release()` then only stops this kernel.
   */
  instance?: QExports;
  /**
   * Run a layer whose weights all fit 7 bits (-63..63), with uint8 activations, on the
   * 7-bit kernel (wasm/src/qconv7.rs: one relaxed-SIMD dot per 16 multiply-adds where
   * the engine has it): the same outputs bit for bit. Default true; false keeps the
   * int8 GEMM (tests, A/B runs).
   */
  sevenBit?: boolean;
}

/** One quantized Conv layer in its own WebAssembly memory. Not reentrant; single-threaded. */
export interface QConvKernel {
  /** [N, M, OH, OW] for an input of `dims`. */
  outputDims(dims: ConvDims): [number, number, number, number];
  /**
   * y = f32(acc) * (s_x * s_w[m]) + bias[m], then ReLU if asked, for x: [N, C, H, W]
   * float32 quantized with (xScale, xZeroPoint); y: [N, M, OH, OW] float32.
   */
  run(
    x: Float32Array,
    dims: ConvDims,
    xScale: number,
    xZeroPoint: number,
    relu: boolean,
    out?: Float32Array,
  ): Float32Array;
  /** The exact int32 sums for xq: [N, C, H, W] uint8, as acc: [N, M, OH, OW]. */
  accumulate(xq: Uint8Array, dims: ConvDims, xZeroPoint: number, out?: Int32Array): Int32Array;
  /** Drops the instance and its memory; later calls throw. */
  release(): void;
}

/** The 16 u32 of wasm/src/qconv.rs's `Geometry`. */
function geometryWords(g: ConvGeometry): Uint32Array {
  return Uint32Array.from([
    g.n,
    g.c,
    g.h,
    g.w,
    g.m,
    g.group,
    g.kh,
    g.kw,
    ...g.strides,
    ...g.pads,
    ...g.dilations,
  ]);
}

/**
 * Instantiates a quantized Conv layer: packs each group's [M/G, C/G * kH * kW] weights
 * into a fresh instance of wasm/alexnet_kernels.wasm (once).
 *
 * @example
 * ```ts
 * import { createQConvKernel } from "./mod.ts";
 *
 * // 1 -> 2 channels, 3x3, pad 1
 * const conv = await createQConvKernel({
 *   weights: new Int8Array(18).fill(1),
 *   shape: [2, 1, 3, 3],
 *   weightScales: new Float32Array([0.5, 1]),
 *   pads: [1, 1, 1, 1],
 * });
 * const y = conv.run(new Float32Array(4).fill(1), [1, 1, 2, 2], 1, 0, true); // y: [1, 2, 2, 2]
 * console.log(Array.from(y)); // [2, 2, 2, 2, 4, 4, 4, 4]
 * conv.release();
 * ```
 */
export async function createQConvKernel(options: QConvKernelOptions): Promise<QConvKernel> {
  const create = "Cannot create the quantized Conv kernel";
  checkQConvWeights(create, options);
  const { weights, shape, weightScales, bias, group = 1, activations = "uint8" } = options;
  const [m, cg, kh, kw] = shape;
  const mg = m / group;
  const k = cg * kh * kw;
  let ex: QExports | undefined = options.instance ?? await instantiateQ(create, options.wasm);
  const seven = options.sevenBit !== false && activations === "uint8" && hasSevenBit(ex) &&
    fits7Bits(weights);
  // The groups' packed blocks one after the other: each group's rows are contiguous in W.
  const groupBytes = packedBytes(ex, create, mg, k, seven);
  const packed = allocStatic(ex, create, groupBytes * group);
  for (let g = 0; g < group; g++) {
    const w = weights.subarray(g * mg * k, (g + 1) * mg * k);
    packInto(ex, create, packed + g * groupBytes, w, mg, k, seven);
  }
  // What the calls need of the layer: its attributes, not its weights (keeping
  // `options` alive would keep the weights, often a view of the whole model file).
  const attrs: QConvWeights = {
    weights: new Int8Array(0),
    shape,
    weightScales,
    group,
    strides: options.strides,
    pads: options.pads,
    dilations: options.dilations,
  };
  const scales = staticFloats(ex, create, weightScales);
  const biasPtr = bias === undefined ? 0 : staticFloats(ex, create, bias);
  const geometry = allocStatic(ex, create, 64);
  let io: IoBlock | undefined = new IoBlock(
    ex,
    "Cannot run the quantized Conv",
    options.instance !== undefined,
  );

  const live = (action: string) => {
    if (ex === undefined || io === undefined) {
      throw new TypeError(`${action}: the kernel was released`);
    }
    return { ex, io };
  };
  /** Checks the call, writes the geometry, and reserves the input and output regions. */
  const prepare = (action: string, x: ArrayLike<number>, dims: ConvDims, inBytes: number) => {
    const { ex, io } = live(action);
    const g = convGeometry(action, attrs, dims);
    const len = g.n * g.c * g.h * g.w;
    if (x.length !== len) {
      throw new RangeError(`${action}: x has ${x.length} values but dims [${dims}] need ${len}`);
    }
    new Uint32Array(ex.memory.buffer, geometry, 16).set(geometryWords(g));
    const outLen = g.n * g.m * g.oh * g.ow;
    const xPtr = len === 0 ? 0 : io.reserve(align16(len * inBytes) + outLen * 4);
    return { ex, io, g, outLen, xPtr, outPtr: xPtr + align16(len * inBytes) };
  };

  return {
    outputDims(dims) {
      const g = convGeometry("Cannot size the quantized Conv output", attrs, dims);
      return [g.n, g.m, g.oh, g.ow];
    },
    run(x, dims, xScale, xZeroPoint, relu, out) {
      const action = "Cannot run the quantized Conv";
      // An int16 layer rounds each image and group on its own scale (qconv16Reference).
      const int16 = activations === "int16";
      const sx = int16 ? 1 : checkQuantizeArgs(action, xScale, xZeroPoint);
      const { ex, io, outLen, xPtr, outPtr } = prepare(action, x, dims, 4);
      const y = outArray(action, out, outLen, Float32Array);
      if (x.length === 0 || outLen === 0) return y;
      try {
        new Float32Array(ex.memory.buffer, xPtr, x.length).set(x);
        const r = relu ? 1 : 0;
        const status = int16
          ? ex.qconv16_f32(xPtr, outPtr, geometry, packed, scales, biasPtr, r)
          : (seven ? ex.qconv7_f32 : ex.qconv_f32)(
            xPtr,
            outPtr,
            geometry,
            packed,
            scales,
            biasPtr,
            sx,
            xZeroPoint,
            r,
          );
        checkStatus(action, status);
        y.set(new Float32Array(ex.memory.buffer, outPtr, outLen));
      } finally {
        io.done();
      }
      return y;
    },
    accumulate(xq, dims, xZeroPoint, out) {
      const action = "Cannot accumulate the quantized Conv";
      checkQuantizeArgs(action, 1, xZeroPoint);
      const { ex, io, outLen, xPtr, outPtr } = prepare(action, xq, dims, 1);
      const acc = outArray(action, out, outLen, Int32Array);
      if (xq.length === 0 || outLen === 0) return acc;
      try {
        new Uint8Array(ex.memory.buffer, xPtr, xq.length).set(xq);
        const accumulate = seven ? ex.qconv7_acc_u8 : ex.qconv_acc_u8;
        checkStatus(action, accumulate(xPtr, outPtr, geometry, packed, xZeroPoint));
        acc.set(new Int32Array(ex.memory.buffer, outPtr, outLen));
      } finally {
        io.done();
      }
      return acc;
    },
    release() {
      ex = undefined;
      io = undefined;
    },
  };
}
