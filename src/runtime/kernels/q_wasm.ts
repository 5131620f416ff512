/**
 * What the int8 kernels share: loading wasm/alexnet_kernels.wasm, its C ABI, status
 * codes, and copying weights into an instance's memory.
 *
 * By default each kernel (fc6, fc7, conv1, ...) gets its own instance and memory.
 * WebAssembly memory never shrinks, so a shared instance keeps the high-water mark of
 * every layer it ever held (fc6 alone is 36 MiB of int8); with one instance per
 * kernel, `release()` drops the instance and the engine gets the whole memory back.
 * The cost is about 130 KiB per instance (two initial pages, stack, code is shared:
 * the module is compiled once per process) plus each kernel's own input, output and
 * scratch blocks, kept between calls. A whole model's kernels can instead share one
 * instance (`instance` option): their weights then live as long as the instance, and
 * the per-call blocks are given back after each call for the next layer to reuse
 * (int8 AlexNet, all kernels: 88 -> 78 MB of WebAssembly memory after 20 runs).
 *
 * @module
 */

import { instantiateKernels, type WasmSource } from "./_module.ts";
import { attachRelaxedDot } from "./_relaxed.ts";

/** The C-ABI exports of wasm/src/lib.rs the int8 kernels use. */
export interface QExports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  free(ptr: number, bytes: number): void;
  alloc_static(bytes: number): number;
  quantize_u8(x: number, q: number, len: number, scale: number, zeroPoint: number): number;
  qgemm_packed_bytes(m: number, k: number): number;
  qgemm_pack(packed: number, src: number, m: number, k: number, row0: number, rows: number): number;
  qlinear_f32(
    x: number,
    y: number,
    n: number,
    packed: number,
    m: number,
    k: number,
    scales: number,
    bias: number,
    xScale: number,
    xZeroPoint: number,
    relu: number,
  ): number;
  qlinear_acc_u8(
    xq: number,
    acc: number,
    n: number,
    packed: number,
    m: number,
    k: number,
    xZeroPoint: number,
  ): number;
  qlinear16_f32(
    x: number,
    y: number,
    n: number,
    packed: number,
    m: number,
    k: number,
    scales: number,
    bias: number,
    relu: number,
  ): number;
  qlinear16_acc(xq: number, acc: number, n: number, packed: number, m: number, k: number): number;
  qconv_f32(
    x: number,
    y: number,
    geometry: number,
    packed: number,
    scales: number,
    bias: number,
    xScale: number,
    xZeroPoint: number,
    relu: number,
  ): number;
  qconv16_f32(
    x: number,
    y: number,
    geometry: number,
    packed: number,
    scales: number,
    bias: number,
    relu: number,
  ): number;
  qconv_acc_u8(
    xq: number,
    acc: number,
    geometry: number,
    packed: number,
    xZeroPoint: number,
  ): number;
  qgemm_packed7_bytes(m: number, k: number): number;
  qgemm_pack7(
    packed: number,
    src: number,
    m: number,
    k: number,
    row0: number,
    rows: number,
  ): number;
  qconv7_f32(
    x: number,
    y: number,
    geometry: number,
    packed: number,
    scales: number,
    bias: number,
    xScale: number,
    xZeroPoint: number,
    relu: number,
  ): number;
  qconv7_acc_u8(
    xq: number,
    acc: number,
    geometry: number,
    packed: number,
    xZeroPoint: number,
  ): number;
  use_dot7(slot: number): void;
}

const FUNCTIONS = [
  "alloc",
  "free",
  "alloc_static",
  "quantize_u8",
  "qgemm_packed_bytes",
  "qgemm_pack",
  "qlinear_f32",
  "qlinear_acc_u8",
  "qlinear16_f32",
  "qlinear16_acc",
  "qconv_f32",
  "qconv16_f32",
  "qconv_acc_u8",
] as const;

/** The 7-bit Conv's exports: modules built before it (A/B runs) lack them. */
const SEVEN_BIT_FUNCTIONS = [
  "qgemm_packed7_bytes",
  "qgemm_pack7",
  "qconv7_f32",
  "qconv7_acc_u8",
  "use_dot7",
] as const;

/** Whether instance `k` has the 7-bit Conv (wasm/src/qconv7.rs). */
export function hasSevenBit(k: QExports): boolean {
  const exports = k as unknown as Record<string, unknown>;
  return SEVEN_BIT_FUNCTIONS.every((name) => typeof exports[name] === "function");
}

/** Status codes of wasm/src/lib.rs. */
const STATUS_MESSAGES: Record<number, string> = {
  1: "bad size",
  2: "the shape is unusable or overflows the address space",
  3: "a buffer is outside the kernel's heap",
  4: "an output overlaps an input",
  5: "the zero point is above 255",
  6: "the kernel cannot grow its memory for scratch space",
  7: "a weight is outside -63..63 (not 7-bit)",
};

export type { WasmSource };

/** Options for {@linkcode instantiateQ}. */
export interface InstantiateQOptions {
  /**
   * Hook wasm/relaxed's relaxed-SIMD dot block into the instance for the 7-bit convs
   * where the engine runs it (default true); false keeps their core-SIMD block (the
   * same sums: tests and A/B runs).
   */
  relaxed?: boolean;
}

const withRelaxedDot = new WeakSet<QExports>();

/** A fresh instance of the kernels module (its own memory). */
export async function instantiateQ(
  action: string,
  wasm?: WasmSource,
  options: InstantiateQOptions = {},
): Promise<QExports> {
  const exports = await instantiateKernels(action, FUNCTIONS, wasm);
  const k = exports as unknown as QExports;
  if (options.relaxed !== false && await attachRelaxedDot(exports)) withRelaxedDot.add(k);
  return k;
}

/** Whether the 7-bit convs of instance `k` run on the relaxed-SIMD dot block. */
export function usesRelaxedDot(k: QExports): boolean {
  return withRelaxedDot.has(k);
}

/** Whether every value of w fits 7 bits (-63..63), so `qgemm_pack7` takes it. */
export function fits7Bits(w: Int8Array): boolean {
  for (let i = 0; i < w.length; i++) {
    if (w[i] < -63 || w[i] > 63) return false;
  }
  return true;
}

/** Throws when a kernel call returned a status other than 0. */
export function checkStatus(action: string, status: number): void {
  if (status !== 0) {
    throw new Error(`${action}: the kernel refused (${STATUS_MESSAGES[status] ?? status})`);
  }
}

/** Bytes rounded up to a multiple of 16, so the next region starts 16-aligned. */
export function align16(bytes: number): number {
  return Math.ceil(bytes / 16) * 16;
}

/** A block kept for the instance's lifetime, or a RangeError when memory cannot grow. */
export function allocStatic(k: QExports, action: string, bytes: number): number {
  const ptr = k.alloc_static(bytes) >>> 0;
  if (ptr === 0) {
    throw new RangeError(`${action}: the kernel cannot grow its memory by ${bytes} bytes`);
  }
  return ptr;
}

/** Copies float32 values into a static block; returns its offset. */
export function staticFloats(k: QExports, action: string, v: Float32Array): number {
  const ptr = allocStatic(k, action, v.byteLength);
  new Float32Array(k.memory.buffer, ptr, v.length).set(v);
  return ptr;
}

/**
 * Bytes of the packed form of W: [m, k] (wasm/src/qgemm.rs's layout, or with `seven`
 * qconv7.rs's), or a RangeError.
 */
export function packedBytes(
  k: QExports,
  action: string,
  m: number,
  kk: number,
  seven = false,
): number {
  const bytes = (seven ? k.qgemm_packed7_bytes(m, kk) : k.qgemm_packed_bytes(m, kk)) >>> 0;
  if (bytes === 0) throw new RangeError(`${action}: a [${m}, ${kk}] weight matrix is too large`);
  return bytes;
}

/**
 * Packs W: [m, k] int8 into the block at `packed` (`packedBytes(m, k, seven)` bytes;
 * `seven`: the 7-bit form, every value in -63..63). The rows pass through a staging
 * block of at most 1 MiB.
 */
export function packInto(
  k: QExports,
  action: string,
  packed: number,
  w: Int8Array,
  m: number,
  kk: number,
  seven = false,
): void {
  const rowsPerStage = Math.max(1, Math.min(m, Math.floor((1 << 20) / kk)));
  const stageBytes = rowsPerStage * kk;
  const stage = k.alloc(stageBytes) >>> 0;
  if (stage === 0) throw new RangeError(`${action}: the kernel cannot grow its memory`);
  try {
    for (let row0 = 0; row0 < m; row0 += rowsPerStage) {
      const rows = Math.min(rowsPerStage, m - row0);
      new Int8Array(k.memory.buffer, stage, rows * kk).set(
        w.subarray(row0 * kk, (row0 + rows) * kk),
      );
      const pack = seven ? k.qgemm_pack7 : k.qgemm_pack;
      checkStatus(action, pack(packed, stage, m, kk, row0, rows));
    }
  } finally {
    k.free(stage, stageBytes);
  }
}

/** Packs W: [m, k] int8 into a new static block and returns its offset. */
export function packWeights(
  k: QExports,
  action: string,
  w: Int8Array,
  m: number,
  kk: number,
): number {
  const packed = allocStatic(k, action, packedBytes(k, action, m, kk));
  packInto(k, action, packed, w, m, kk);
  return packed;
}

/**
 * One heap block for a call's inputs and outputs, kept between calls and grown only
 * when a call needs more; or, in an instance shared by several kernels (`transient`),
 * given back after each call (`done`) so that the next kernel reuses it.
 */
export class IoBlock {
  #ptr = 0;
  #capacity = 0;
  readonly k: QExports;
  readonly action: string;
  readonly transient: boolean;

  constructor(k: QExports, action: string, transient = false) {
    this.k = k;
    this.action = action;
    this.transient = transient;
  }

  /** Ends a call: a transient block goes back to the heap. */
  done(): void {
    if (this.transient && this.#ptr !== 0) {
      this.k.free(this.#ptr, this.#capacity);
      this.#ptr = 0;
      this.#capacity = 0;
    }
  }

  /** A block of at least `bytes` bytes (16-aligned). */
  reserve(bytes: number): number {
    if (bytes > this.#capacity) {
      if (this.#ptr !== 0) this.k.free(this.#ptr, this.#capacity);
      this.#ptr = this.k.alloc(bytes) >>> 0;
      this.#capacity = this.#ptr === 0 ? 0 : bytes;
      if (this.#ptr === 0) {
        throw new RangeError(`${this.action}: the kernel cannot grow its memory to ${bytes} bytes`);
      }
    }
    return this.#ptr;
  }
}
