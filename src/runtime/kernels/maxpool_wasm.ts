/**
 * ONNX MaxPool (2-D, NCHW float32) on the kernels module of `wasm/`.
 * {@linkcode maxPoolReference} is the plain version it must match exactly.
 *
 * @module
 */
import { instantiateKernels, type WasmSource } from "./_module.ts";
import { type MaxPoolParams, type PoolGeometry, poolGeometry } from "./maxpool_reference.ts";
import type { ConvDims } from "./qconv_reference.ts";

interface PoolExports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  free(ptr: number, bytes: number): void;
  maxpool_f32(x: number, y: number, geometry: number): number;
}

/** Options for {@linkcode createMaxPoolKernel}. */
export interface MaxPoolKernelOptions extends MaxPoolParams {
  /** The module to use instead of wasm/alexnet_kernels.wasm (bytes, compiled, or a URL). */
  wasm?: WasmSource;
}

/** One MaxPool node in its own WebAssembly memory. Not reentrant. */
export interface MaxPoolKernel {
  /** [N, C, OH, OW] for an input of `dims`. */
  outputDims(dims: ConvDims): [number, number, number, number];
  /** y = MaxPool(x) for x: [N, C, H, W]; y: [N, C, OH, OW], written into `out` when given. */
  run(x: Float32Array, dims: ConvDims, out?: Float32Array): Float32Array;
}

/** The 16 u32 of wasm/src/maxpool.rs's `Geometry`. */
function geometryWords(g: PoolGeometry): Uint32Array {
  return Uint32Array.from([
    g.n,
    g.c,
    g.h,
    g.w,
    g.kh,
    g.kw,
    ...g.strides,
    ...g.pads,
    ...g.dilations,
    g.oh,
    g.ow,
  ]);
}

const align16 = (bytes: number) => Math.ceil(bytes / 16) * 16;

/**
 * Instantiates a MaxPool kernel for one node's attributes.
 *
 * @example
 * ```ts
 * import { createMaxPoolKernel } from "./maxpool_wasm.ts";
 *
 * const pool = await createMaxPoolKernel({ kernelShape: [2, 2], strides: [2, 2] });
 * const y = pool.run(new Float32Array([1, 5, 2, 0, 3, 4, -1, 7]), [1, 1, 2, 4]);
 * console.log(Array.from(y)); // [5, 7]
 * ```
 */
export async function createMaxPoolKernel(
  options: MaxPoolKernelOptions,
): Promise<MaxPoolKernel> {
  const create = "Cannot create the MaxPool kernel";
  const k = (await instantiateKernels(
    create,
    ["alloc", "free", "maxpool_f32"],
    options.wasm,
  )) as unknown as PoolExports;
  // Geometry first, then one block for x and y, kept between calls.
  const geometry = k.alloc(64) >>> 0;
  if (geometry === 0) throw new RangeError(`${create}: the kernel cannot grow its memory`);
  let block = 0;
  let capacity = 0;
  return {
    outputDims(dims) {
      const g = poolGeometry("Cannot size the MaxPool output", options, dims);
      return [g.n, g.c, g.oh, g.ow];
    },
    run(x, dims, out) {
      const action = "Cannot run MaxPool";
      const g = poolGeometry(action, options, dims);
      const len = g.n * g.c * g.h * g.w;
      if (x.length !== len) {
        throw new RangeError(`${action}: x has ${x.length} values but dims [${dims}] need ${len}`);
      }
      const outLen = g.n * g.c * g.oh * g.ow;
      if (out !== undefined && out.length !== outLen) {
        throw new RangeError(`${action}: out must hold ${outLen} values, it has ${out.length}`);
      }
      const y = out ?? new Float32Array(outLen);
      if (len === 0) return y;
      const bytes = align16(len * 4) + outLen * 4;
      if (bytes > capacity) {
        if (block !== 0) k.free(block, capacity);
        block = k.alloc(bytes) >>> 0;
        capacity = block === 0 ? 0 : bytes;
        if (block === 0) throw new RangeError(`${action}: the kernel cannot grow its memory`);
      }
      const yPtr = block + align16(len * 4);
      new Uint32Array(k.memory.buffer, geometry, 16).set(geometryWords(g));
      new Float32Array(k.memory.buffer, block, len).set(x);
      const status = k.maxpool_f32(block, yPtr, geometry);
      if (status !== 0) throw new Error(`${action}: the kernel refused (status ${status})`);
      y.set(new Float32Array(k.memory.buffer, yPtr, outLen));
      return y;
    },
  };
}
