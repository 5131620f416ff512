/**
 * One call of a split Conv or Gemm (split.ts): the helpers' slices are started
 * first (each gets its input channels and its call's fields), the main thread runs
 * slice 0, waits for the helpers, and the slices' outputs are put together in y.
 *
 * @module
 */
import { CONTROL } from "./_split_protocol.ts";
import type { Helper } from "./_split_helpers.ts";
import { type Cut, gather, scatter } from "./_split_slices.ts";

/** The part of a split kernel that the main thread and helpers share. */
export interface SplitRun {
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

/** The input quantization and activation of one call, as every slice gets them. */
export interface SplitQuant {
  xScale: number;
  xZeroPoint: number;
  relu: boolean;
}

/** Options of {@linkcode runSplit}: the layer's slices and threads, and this call. */
export interface SplitRunOptions {
  /** Starts error messages ("Cannot run the split quantized Conv"). */
  action: string;
  /** Slice i runs on helpers[i - 1]; slice 0 on this thread. */
  slices: Cut[];
  helpers: Helper[];
  /** The layer's id in the helpers. */
  layerId: number;
  call: SplitRun;
  quant: SplitQuant;
  /** Slice 0's input and output for a batch, grown as needed and kept between calls. */
  local: { x: Float32Array; y: Float32Array };
}

/** Runs one call over every slice; y gets the assembled output. x: [N, C, inner]. */
export function runSplit(x: Float32Array, y: Float32Array, options: SplitRunOptions): void {
  const started = startHelpers(x, options);
  const { lx, ly } = localViews(x, y, options);
  try {
    options.call.runLocal(lx, ly);
  } finally {
    // Wait for the helpers even when the local slice failed, so no run overlaps the next.
    for (let i = 1; i < options.slices.length; i++) {
      options.helpers[i - 1].finish(started[i - 1], options.action);
    }
  }
  collect(ly, y, options);
}

/** Hands slices 1.. their input and fields and starts them; their request numbers. */
function startHelpers(x: Float32Array, options: SplitRunOptions): number[] {
  const { slices, helpers, call } = options;
  const started: number[] = [];
  for (let i = 1; i < slices.length; i++) {
    const h = helpers[i - 1];
    const { inLen, outLen } = call.sizes(i);
    const outOffset = Math.ceil((inLen * 4) / 64) * 64;
    const data = h.reserve(outOffset + outLen * 4);
    gather(x, call.n, call.inChannels, call.inInner, slices[i], new Float32Array(data, 0, inLen));
    writeFields(h.control, i, { inLen, outLen, outOffset }, options);
    h.controlF32[CONTROL.X_SCALE] = options.quant.xScale;
    started.push(h.start());
  }
  return started;
}

/** The control words of slice `slice`'s call. */
function writeFields(
  c: Int32Array,
  slice: number,
  at: { inLen: number; outLen: number; outOffset: number },
  options: SplitRunOptions,
): void {
  options.call.fields(c, slice);
  c[CONTROL.LAYER] = options.layerId;
  c[CONTROL.IN_LEN] = at.inLen;
  c[CONTROL.OUT_LEN] = at.outLen;
  c[CONTROL.OUT_OFFSET] = at.outOffset;
  c[CONTROL.RELU] = options.quant.relu ? 1 : 0;
  c[CONTROL.X_ZERO] = options.quant.xZeroPoint;
}

/**
 * Slice 0's input and output. One image: its channels are contiguous in x and in y,
 * so it reads and writes them in place; a batch gathers them per image (and
 * {@linkcode collect} scatters its output).
 */
function localViews(
  x: Float32Array,
  y: Float32Array,
  { slices, call, local }: SplitRunOptions,
): { lx: Float32Array; ly: Float32Array } {
  const s0 = slices[0];
  const { inLen, outLen } = call.sizes(0);
  const whole = s0.c0 === 0 && s0.c1 === call.inChannels;
  const single = call.n === 1;
  let lx = x;
  if (!whole && single) lx = x.subarray(s0.c0 * call.inInner, s0.c1 * call.inInner);
  else if (!whole) {
    if (local.x.length < inLen) local.x = new Float32Array(inLen);
    lx = local.x.subarray(0, inLen);
    gather(x, call.n, call.inChannels, call.inInner, s0, lx);
  }
  if (single) return { lx, ly: y.subarray(s0.m0 * call.outInner, s0.m1 * call.outInner) };
  if (local.y.length < outLen) local.y = new Float32Array(outLen);
  return { lx, ly: local.y.subarray(0, outLen) };
}

/** Puts slice 0's output (a batch's; one image's is in place) and the helpers' into y. */
function collect(ly: Float32Array, y: Float32Array, { slices, helpers, call }: SplitRunOptions) {
  if (call.n !== 1) scatter(ly, call.n, call.outChannels, call.outInner, slices[0], y);
  for (let i = 1; i < slices.length; i++) {
    const h = helpers[i - 1];
    const c = h.control;
    const out = new Float32Array(h.data, c[CONTROL.OUT_OFFSET], c[CONTROL.OUT_LEN]);
    scatter(out, call.n, call.outChannels, call.outInner, slices[i], y);
  }
}
