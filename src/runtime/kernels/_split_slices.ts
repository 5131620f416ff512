/**
 * How a split layer is cut (split.ts): a Conv by groups or by output channels in
 * multiples of 4, a Gemm by output rows; and the copies of a slice's input channels
 * out of x and of its output channels into y.
 *
 * @module
 */
import type { QConvWeights } from "./qconv_reference.ts";
import type { QLinearWeights } from "./_q_args.ts";

/** Where a slice sits: output channels [m0, m1) from input channels [c0, c1). */
export interface Cut {
  m0: number;
  m1: number;
  c0: number;
  c1: number;
}

/** A slice: its cut and its layer. */
export interface Slice<L> extends Cut {
  layer: L;
}

/** The cuts alone, for the calls: a slice's layer would keep its weights reachable. */
export const cutsOf = (slices: Cut[]): Cut[] =>
  slices.map(({ m0, m1, c0, c1 }) => ({ m0, m1, c0, c1 }));

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
export function gather(
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
export function scatter(
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
