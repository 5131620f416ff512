/**
 * Shared by the LRN tests and bench/lrn_bench.ts: seeded random tensors, the
 * tolerance check, and onnxruntime-web's built-in LRN as an independent baseline.
 *
 * @module
 */
import * as ort from "onnxruntime-web";
import onnxProto from "onnx-proto";
import type { LrnDims, LrnParams } from "../../../src/runtime/kernels/mod.ts";

const { onnx } = onnxProto;

/** Allowed error: max |ours - reference| <= TOLERANCE * max |reference|. */
export const TOLERANCE = 2e-6;

/**
 * Deterministic uniform floats in [lo, hi) (mulberry32), so a failure reproduces.
 *
 * @example
 * ```ts
 * import { randomTensor } from "./_lrn_helpers.ts";
 *
 * const x = randomTensor(2 * 3 * 4 * 4, 42); // x: [2, 3, 4, 4]
 * console.log(x.length); // 96
 * ```
 */
export function randomTensor(length: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = lo + (hi - lo) * u;
  }
  return out;
}

/** What {@linkcode compareToReference} found. */
export interface Comparison {
  maxDiff: number;
  maxRef: number;
  ok: boolean;
  /** The first few offending elements, for the failure message. */
  report: string;
}

/**
 * Checks `actual` against `expected` with the project's LRN tolerance, listing the
 * first mismatches (index, NCHW position, both values) when it fails. NaN must
 * match NaN and infinities must match exactly.
 *
 * @example
 * ```ts
 * import { compareToReference } from "./_lrn_helpers.ts";
 *
 * const c = compareToReference([1, 2.0000001], [1, 2], [1, 2, 1, 1]);
 * if (!c.ok) throw new Error(c.report);
 * ```
 */
export function compareToReference(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  dims: LrnDims,
  tolerance = TOLERANCE,
): Comparison {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    if (Number.isFinite(expected[i])) maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  const limit = tolerance * maxRef;
  const bad: string[] = [];
  let badCount = 0;
  const [, c, h, w] = dims;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const same = Number.isFinite(e) ? Math.abs(a - e) <= limit : Object.is(a, e) ||
      (Number.isNaN(a) && Number.isNaN(e));
    if (Number.isFinite(e) && Number.isFinite(a)) maxDiff = Math.max(maxDiff, Math.abs(a - e));
    if (!same) {
      badCount++;
      if (bad.length < 5) {
        const pos = [
          Math.floor(i / (c * h * w)),
          Math.floor(i / (h * w)) % c,
          Math.floor(i / w) % h,
          i % w,
        ];
        bad.push(`  [${i}] at [${pos}]: got ${a}, expected ${e}`);
      }
    }
  }
  const ok = badCount === 0 && actual.length === expected.length;
  const report = ok ? "" : `${badCount} of ${expected.length} values off by more than ` +
    `${tolerance} * ${maxRef} (max |diff| ${maxDiff}):\n${bad.join("\n")}`;
  return { maxDiff, maxRef, ok, report };
}

/**
 * An LRN-only ONNX model (opset 13) with a fixed input shape, x -> y.
 *
 * @example
 * ```ts
 * import { lrnModel } from "./_lrn_helpers.ts";
 *
 * const bytes = lrnModel([1, 96, 55, 55], { size: 5, alpha: 1e-4, beta: 0.75, bias: 1 });
 * ```
 */
export function lrnModel(dims: LrnDims, params: LrnParams): Uint8Array {
  const A = onnx.AttributeProto.AttributeType;
  const shape = { dim: dims.map((d) => ({ dimValue: d })) };
  const type = { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape } };
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: "alexnet-edge-tests",
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "lrn",
      node: [{
        opType: "LRN",
        input: ["x"],
        output: ["y"],
        name: "lrn",
        attribute: [
          { name: "size", type: A.INT, i: params.size },
          { name: "alpha", type: A.FLOAT, f: params.alpha ?? 1e-4 },
          { name: "beta", type: A.FLOAT, f: params.beta ?? 0.75 },
          { name: "bias", type: A.FLOAT, f: params.bias ?? 1 },
        ],
      }],
      input: [{ name: "x", type }],
      output: [{ name: "y", type }],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** onnxruntime-web's LRN for one shape and attribute set. */
export interface OrtLrn {
  run(x: Float32Array): Promise<Float32Array>;
  release(): Promise<void>;
}

/**
 * Builds onnxruntime-web's LRN on the wasm execution provider. Set
 * `ort.env.wasm.numThreads` before the first call: onnxruntime-web reads it once,
 * when it starts its WebAssembly runtime.
 *
 * @example
 * ```ts
 * import { createOrtLrn } from "./_lrn_helpers.ts";
 *
 * const theirs = await createOrtLrn([1, 3, 2, 2], { size: 3 });
 * const y = await theirs.run(new Float32Array(12).fill(1)); // y: [1, 3, 2, 2]
 * await theirs.release();
 * ```
 */
export async function createOrtLrn(dims: LrnDims, params: LrnParams): Promise<OrtLrn> {
  const session = await ort.InferenceSession.create(lrnModel(dims, params), {
    executionProviders: ["wasm"],
  });
  return {
    async run(x) {
      const out = await session.run({ x: new ort.Tensor("float32", x, [...dims]) });
      return out.y.data as Float32Array;
    },
    release: () => session.release(),
  };
}
