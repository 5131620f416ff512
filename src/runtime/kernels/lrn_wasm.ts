/**
 * ONNX LRN on the SIMD128 WebAssembly kernel built from `wasm/` (Rust, no_std).
 *
 * @module
 */
import { checkLrnArgs } from "./_lrn_args.ts";
import type { LrnDims, LrnParams } from "./lrn_reference.ts";
import { instantiateKernels, type WasmSource } from "./_module.ts";

/** The C-ABI exports of wasm/src/lib.rs. */
interface KernelExports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  free(ptr: number, bytes: number): void;
  lrn_f32(
    x: number,
    y: number,
    n: number,
    c: number,
    h: number,
    w: number,
    size: number,
    alpha: number,
    beta: number,
    bias: number,
  ): number;
}

/** `lrn_f32` status codes, as in wasm/src/lib.rs. */
const STATUS_MESSAGES: Record<number, string> = {
  1: "size is 0",
  2: "the shape overflows the address space",
  3: "a buffer is outside the kernel's heap",
  4: "the input and output buffers overlap",
};

/** Options for {@linkcode createLrnKernel}. */
export interface LrnKernelOptions {
  /**
   * The module to use instead of wasm/alexnet_kernels.wasm: its bytes, a compiled
   * module, or a file: or http(s): URL to read it from.
   */
  wasm?: WasmSource;
}

/** An instance of the LRN kernel with its own WebAssembly memory. Not reentrant. */
export interface LrnKernel {
  /**
   * y = LRN(x) for x, y: [N, C, H, W] float32. Writes into `out` when given (it may
   * be `x`), else into a new array. The input and output live in one block of the
   * kernel's memory that is kept between calls and grown only when a call needs more.
   */
  run(x: Float32Array, dims: LrnDims, params: LrnParams, out?: Float32Array): Float32Array;
}

/** Bytes of one float32 region of `len` values, padded so the next starts 16-aligned. */
function regionBytes(len: number): number {
  return Math.ceil((len * 4) / 16) * 16;
}

/**
 * Instantiates the LRN kernel (ONNX LRN, NCHW float32). The default module is
 * wasm/alexnet_kernels.wasm, read once per process.
 *
 * @example
 * ```ts
 * import { createLrnKernel } from "./mod.ts";
 *
 * const lrn = await createLrnKernel();
 * // x, y: [1, 96, 55, 55], AlexNet's first LRN
 * const x = new Float32Array(96 * 55 * 55).fill(1);
 * const y = lrn.run(x, [1, 96, 55, 55], { size: 5, alpha: 1e-4, beta: 0.75, bias: 1 });
 * console.log(y.length); // 290400
 * ```
 */
export async function createLrnKernel(options: LrnKernelOptions = {}): Promise<LrnKernel> {
  const { wasm } = options;
  const k = (await instantiateKernels(
    "Cannot load the LRN kernel",
    ["alloc", "free", "lrn_f32"],
    wasm,
  )) as unknown as KernelExports;
  let ptr = 0;
  let capacity = 0;

  return {
    run(x, dims, params, out) {
      const a = checkLrnArgs("Cannot run LRN", x, dims, params, out);
      const y = out ?? new Float32Array(x.length);
      if (x.length === 0) return y;
      const region = regionBytes(x.length);
      if (2 * region > capacity) {
        if (ptr !== 0) k.free(ptr, capacity);
        ptr = k.alloc(2 * region) >>> 0;
        capacity = ptr === 0 ? 0 : 2 * region;
        if (ptr === 0) {
          throw new RangeError(
            `Cannot run LRN: the kernel cannot grow its memory to ${2 * region} bytes`,
          );
        }
      }
      const xPtr = ptr;
      const yPtr = ptr + region;
      // A view per call: growing memory detaches the previous ArrayBuffer.
      const heap = new Float32Array(k.memory.buffer);
      heap.set(x, xPtr / 4);
      const status = k.lrn_f32(xPtr, yPtr, a.n, a.c, a.h, a.w, a.size, a.alpha, a.beta, a.bias);
      if (status !== 0) {
        throw new Error(
          `Cannot run LRN: the kernel refused (${STATUS_MESSAGES[status] ?? status})`,
        );
      }
      y.set(heap.subarray(yPtr / 4, yPtr / 4 + x.length));
      return y;
    },
  };
}
