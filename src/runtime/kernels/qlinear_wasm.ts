/**
 * The quantized Gemm (transB) on the SIMD128 int8 kernel of `wasm/` (Rust, no_std):
 * uint8 activations quantized per call, int8 weights packed once, int32 sums, float
 * epilogue. {@linkcode qlinearReference} is the plain version it must match bit for bit;
 * for `activations: "int16"` layers (float input rounded per sample to int16, exact
 * sums) it is {@linkcode qlinear16Reference}.
 *
 * @module
 */
import { checkLinearArgs, checkQLinearWeights, checkQuantizeArgs, outArray } from "./_q_args.ts";
import {
  align16,
  checkStatus,
  instantiateQ,
  IoBlock,
  packWeights,
  type QExports,
  staticFloats,
  type WasmSource,
} from "./q_wasm.ts";
import type { QLinearWeights } from "./qlinear_reference.ts";

/** Options for {@linkcode createQLinearKernel}: the layer, and where the module comes from. */
export interface QLinearKernelOptions extends QLinearWeights {
  /** The module to use instead of wasm/alexnet_kernels.wasm (bytes, compiled, or a URL). */
  wasm?: WasmSource;
  /**
   * An instance shared with other kernels (from `instantiateQ`) instead of a fresh one:
   * the weights stay in it as long as it lives, and the per-call block goes back to
   * its heap after each call. `release()` then only stops this kernel.
   */
  instance?: QExports;
}

/**
 * One quantized Gemm layer with its weights in its own WebAssembly memory. Not
 * reentrant (one call at a time); single-threaded.
 */
export interface QLinearKernel {
  /** Output features M. */
  readonly m: number;
  /** Input features K. */
  readonly k: number;
  /** How the input is rounded (`QLinearWeights.activations`). */
  readonly activations: "uint8" | "int16";
  /**
   * y = f32(acc) * (s_x * s_w[m]) + bias[m], then ReLU if asked, for x: [N, K] float32
   * quantized with (xScale, xZeroPoint); y: [N, M] float32, written into `out` when given.
   * An `int16` layer picks s_x per sample itself and ignores xScale and xZeroPoint.
   */
  run(
    x: Float32Array,
    n: number,
    xScale: number,
    xZeroPoint: number,
    relu: boolean,
    out?: Float32Array,
  ): Float32Array;
  /** The exact int32 sums acc[n, m] = sum over k of (xq[n, k] - z_x) * w[m, k]; xq: [N, K]. */
  accumulate(xq: Uint8Array, n: number, xZeroPoint: number, out?: Int32Array): Int32Array;
  /** The exact sums acc[n, m] = sum over k of xq[n, k] * w[m, k] for any int16 xq: [N, K]. */
  accumulate16(xq: Int16Array, n: number, out?: Float64Array): Float64Array;
  /** ONNX QuantizeLinear of x exactly as `run` computes it (uint8, same length as x). */
  quantize(x: Float32Array, xScale: number, xZeroPoint: number, out?: Uint8Array): Uint8Array;
  /** Drops the instance and its memory; later calls throw. */
  release(): void;
}

/**
 * Instantiates a quantized Gemm layer: copies the weights into a fresh instance of
 * wasm/alexnet_kernels.wasm in the kernel's packed layout (once), with the scales and
 * bias beside them.
 *
 * @example
 * ```ts
 * import { createQLinearKernel } from "./mod.ts";
 *
 * // W: [2, 3] int8, one scale per row; x: [1, 3]
 * const fc = await createQLinearKernel({
 *   weights: new Int8Array([1, 2, 3, -4, 5, -6]),
 *   m: 2,
 *   k: 3,
 *   weightScales: new Float32Array([0.5, 0.25]),
 *   bias: new Float32Array([0, 1]),
 * });
 * const y = fc.run(new Float32Array([1, 2, 3]), 1, 1, 0, false); // y: [1, 2]
 * console.log(Array.from(y)); // [7, -2]
 * fc.release();
 * ```
 */
export async function createQLinearKernel(options: QLinearKernelOptions): Promise<QLinearKernel> {
  const create = "Cannot create the quantized Gemm kernel";
  checkQLinearWeights(create, options);
  const { weights, m, k, weightScales, bias, activations = "uint8" } = options;
  let ex: QExports | undefined = options.instance ?? await instantiateQ(create, options.wasm);
  const packed = packWeights(ex, create, weights, m, k);
  const scales = staticFloats(ex, create, weightScales);
  const biasPtr = bias === undefined ? 0 : staticFloats(ex, create, bias);
  let io: IoBlock | undefined = new IoBlock(
    ex,
    "Cannot run the quantized Gemm",
    options.instance !== undefined,
  );

  const live = (action: string) => {
    if (ex === undefined || io === undefined) {
      throw new TypeError(`${action}: the kernel was released`);
    }
    return { ex, io };
  };

  return {
    m,
    k,
    activations,
    run(x, n, xScale, xZeroPoint, relu, out) {
      const action = "Cannot run the quantized Gemm";
      const { ex, io } = live(action);
      checkLinearArgs(action, x, n, k);
      // An int16 layer rounds each sample on its own scale (qlinear16Reference).
      const int16 = activations === "int16";
      const sx = int16 ? 1 : checkQuantizeArgs(action, xScale, xZeroPoint);
      const y = outArray(action, out, n * m, Float32Array);
      if (n === 0) return y;
      const xPtr = io.reserve(align16(x.byteLength) + y.byteLength);
      try {
        const yPtr = xPtr + align16(x.byteLength);
        new Float32Array(ex.memory.buffer, xPtr, x.length).set(x);
        const r = relu ? 1 : 0;
        const status = int16
          ? ex.qlinear16_f32(xPtr, yPtr, n, packed, m, k, scales, biasPtr, r)
          : ex.qlinear_f32(xPtr, yPtr, n, packed, m, k, scales, biasPtr, sx, xZeroPoint, r);
        checkStatus(action, status);
        // A view after the call: scratch may have grown memory, detaching older views.
        y.set(new Float32Array(ex.memory.buffer, yPtr, y.length));
      } finally {
        io.done();
      }
      return y;
    },
    accumulate(xq, n, xZeroPoint, out) {
      const action = "Cannot accumulate the quantized Gemm";
      const { ex, io } = live(action);
      checkLinearArgs(action, xq, n, k);
      checkQuantizeArgs(action, 1, xZeroPoint);
      const acc = outArray(action, out, n * m, Int32Array);
      if (n === 0) return acc;
      const xPtr = io.reserve(align16(xq.byteLength) + acc.byteLength);
      try {
        const accPtr = xPtr + align16(xq.byteLength);
        new Uint8Array(ex.memory.buffer, xPtr, xq.length).set(xq);
        checkStatus(action, ex.qlinear_acc_u8(xPtr, accPtr, n, packed, m, k, xZeroPoint));
        acc.set(new Int32Array(ex.memory.buffer, accPtr, acc.length));
      } finally {
        io.done();
      }
      return acc;
    },
    accumulate16(xq, n, out) {
      const action = "Cannot accumulate the int16 Gemm";
      const { ex, io } = live(action);
      if (!(xq instanceof Int16Array)) throw new TypeError(`${action}: xq must be an Int16Array`);
      checkLinearArgs(action, xq, n, k);
      const acc = outArray(action, out, n * m, Float64Array);
      if (n === 0) return acc;
      const xPtr = io.reserve(align16(xq.byteLength) + acc.byteLength);
      try {
        const accPtr = xPtr + align16(xq.byteLength);
        new Int16Array(ex.memory.buffer, xPtr, xq.length).set(xq);
        checkStatus(action, ex.qlinear16_acc(xPtr, accPtr, n, packed, m, k));
        acc.set(new Float64Array(ex.memory.buffer, accPtr, acc.length));
      } finally {
        io.done();
      }
      return acc;
    },
    quantize(x, xScale, xZeroPoint, out) {
      const action = "Cannot quantize";
      const { ex, io } = live(action);
      const sx = checkQuantizeArgs(action, xScale, xZeroPoint);
      const q = outArray(action, out, x.length, Uint8Array);
      if (x.length === 0) return q;
      const xPtr = io.reserve(align16(x.byteLength) + q.byteLength);
      try {
        const qPtr = xPtr + align16(x.byteLength);
        new Float32Array(ex.memory.buffer, xPtr, x.length).set(x);
        checkStatus(action, ex.quantize_u8(xPtr, qPtr, x.length, sx, xZeroPoint));
        q.set(new Uint8Array(ex.memory.buffer, qPtr, q.length));
      } finally {
        io.done();
      }
      return q;
    },
    release() {
      ex = undefined;
      io = undefined;
    },
  };
}
