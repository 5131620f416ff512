import assert from "node:assert/strict";
import { createQConvKernel } from "../../../src/runtime/kernels/qconv_wasm.ts";
import {
  conv16QMax,
  type ConvDims,
  qconv16Reference,
  type QConvWeights,
} from "../../../src/runtime/kernels/qconv_reference.ts";
import { createSplitConvKernel, KernelHelpers } from "../../../src/runtime/kernels/split.ts";
import { mismatches, randomFloats, randomInts } from "./_q_helpers.ts";

type Attrs = Pick<QConvWeights, "group" | "strides" | "pads" | "dilations">;

/** An int16 (weight-only) conv with seeded random weights in [-128, 127]. */
function randomConv(shape: QConvWeights["shape"], attrs: Attrs, seed: number): QConvWeights {
  const len = shape.reduce((a, b) => a * b, 1);
  return {
    weights: randomInts(Int8Array, len, seed, -128, 127),
    shape,
    weightScales: randomFloats(shape[0], seed + 1, 1e-4, 0.02),
    bias: randomFloats(shape[0], seed + 2, -1, 1),
    activations: "int16",
    ...attrs,
  };
}

const size = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

// Groups, strides, pads, dilations, K around the 16-wide chunks, N > 1, and K large
// enough that q_max drops below 32767 (K = C/G * kH * kW > 512).
const CASES: [QConvWeights["shape"], Attrs, ConvDims][] = [
  [[1, 1, 1, 1], {}, [1, 1, 1, 1]],
  [[5, 3, 3, 3], { pads: [1, 1, 1, 1] }, [2, 3, 7, 6]],
  [[6, 2, 2, 3], { group: 2, strides: [2, 1], pads: [0, 2, 1, 0], dilations: [2, 1] }, [
    1,
    4,
    9,
    8,
  ]],
  [[9, 17, 1, 1], { group: 3 }, [2, 51, 4, 4]],
  [[16, 3, 11, 11], { strides: [4, 4] }, [1, 3, 67, 67]], // conv1-like
  [[12, 48, 5, 5], { group: 2, pads: [2, 2, 2, 2] }, [1, 96, 9, 9]], // conv2's K = 1200
  [[8, 256, 3, 3], { pads: [1, 1, 1, 1] }, [1, 256, 5, 5]], // conv3's K = 2304
];

for (const [shape, attrs, dims] of CASES) {
  const label = `W [${shape}] ${JSON.stringify(attrs)} on [${dims}]`;
  Deno.test(`qconv16 run equals the reference bit for bit for ${label}`, async () => {
    const layer = randomConv(shape, attrs, size(shape) + size(dims));
    const kernel = await createQConvKernel(layer);
    try {
      const x = new Float32Array(size(dims));
      // Images and groups of very different ranges: each gets its own scale.
      const [n, c] = dims, plane = dims[2] * dims[3];
      for (let i = 0; i < n * c; i++) {
        const range = [3, 1e-3, 2e4][i % 3];
        x.set(randomFloats(plane, i + 1, -range / 4, range), i * plane);
      }
      for (const relu of [false, true]) {
        const expected = qconv16Reference(layer, x, dims, relu);
        // xScale and xZeroPoint are ignored by an int16 layer.
        assert.equal(mismatches(kernel.run(x, dims, 9, 3, relu), expected), "", `relu ${relu}`);
      }
    } finally {
      kernel.release();
    }
  });
}

Deno.test("qconv16's grid keeps int32 sums exact: q_max * 128 * K < 2^31 at AlexNet's K", () => {
  for (const k of [363, 1200, 1728, 2304, 65536]) {
    const q = conv16QMax(k);
    assert.ok(q * 128 * k <= 0x7fffffff && (q + 1) * 128 * k > 0x7fffffff || q === 32767, `${k}`);
  }
  assert.deepEqual([363, 1200, 2304, 1728].map(conv16QMax), [32767, 13981, 7281, 9709]);
});

Deno.test("qconv16 is exact at the extremes: every value at +-q_max, weights -128", async () => {
  // K = 2304: q_max 7281, |acc| up to 2304 * 128 * 7281, just below 2^31.
  const layer: QConvWeights = {
    weights: new Int8Array(4 * 256 * 9).fill(-128),
    shape: [4, 256, 3, 3],
    weightScales: new Float32Array(4).fill(1),
    activations: "int16",
  };
  const kernel = await createQConvKernel(layer);
  try {
    for (const v of [1, -1]) {
      const x = new Float32Array(256 * 9).fill(v);
      const y = kernel.run(x, [1, 256, 3, 3], 1, 0, false);
      assert.equal(mismatches(y, qconv16Reference(layer, x, [1, 256, 3, 3], false)), "");
      // One output pixel: acc = -128 * 7281 * 2304 * v, times s = 1 / 7281 (rounded).
      assert.ok(Math.abs(y[0] + 128 * 2304 * v) < 0.01 * 128 * 2304, `${y[0]}`);
    }
  } finally {
    kernel.release();
  }
});

Deno.test("qconv16 rounds zeros, NaN and infinities as the reference does", async () => {
  const layer = randomConv([4, 2, 3, 3], { group: 2, pads: [1, 1, 1, 1] }, 3);
  const kernel = await createQConvKernel(layer);
  try {
    const dims: ConvDims = [2, 4, 5, 5];
    const x = randomFloats(size(dims), 4, -2, 2);
    x.fill(0, 0, 50); // image 0, group 0: zeros (scale 1)
    x[60] = NaN;
    x[61] = Infinity;
    x[130] = -Infinity;
    const y = kernel.run(x, dims, 1, 0, true);
    assert.equal(mismatches(y, qconv16Reference(layer, x, dims, true)), "");
  } finally {
    kernel.release();
  }
});

Deno.test("qconv16 stays within half a grid step of the float conv on the dequantized weights", async () => {
  const layer = randomConv([8, 48, 5, 5], { group: 2, pads: [2, 2, 2, 2] }, 8);
  const dims: ConvDims = [1, 96, 6, 6];
  const kernel = await createQConvKernel(layer);
  try {
    const x = randomFloats(size(dims), 9, -1, 30);
    const y = kernel.run(x, dims, 1, 0, false);
    const qMax = conv16QMax(48 * 25);
    // Float conv, and the bound: sum |w| * s / 2 per output, s per group.
    for (let o = 0; o < 8; o++) {
      const g = Math.floor(o / 4);
      let max = 0;
      for (let i = g * 48 * 36; i < (g + 1) * 48 * 36; i++) max = Math.max(max, Math.abs(x[i]));
      const s = max / qMax;
      for (let p = 0; p < 36; p++) {
        const [oy, ox] = [Math.floor(p / 6), p % 6];
        let exact = layer.bias![o], wAbs = 0;
        for (let ci = 0; ci < 48; ci++) {
          for (let i = 0; i < 5; i++) {
            for (let j = 0; j < 5; j++) {
              const [iy, ix] = [oy - 2 + i, ox - 2 + j];
              if (iy < 0 || iy >= 6 || ix < 0 || ix >= 6) continue;
              const w = layer.weights[((o * 48 + ci) * 5 + i) * 5 + j] * layer.weightScales[o];
              exact += x[((g * 48 + ci) * 6 + iy) * 6 + ix] * w;
              wAbs += Math.abs(w);
            }
          }
        }
        const bound = wAbs * s / 2 + 4e-7 * (Math.abs(exact) + wAbs * 30);
        const err = Math.abs(y[o * 36 + p] - exact);
        assert.ok(err <= bound, `y[${o}, ${p}] = ${y[o * 36 + p]}, float ${exact}, bound ${bound}`);
      }
    }
  } finally {
    kernel.release();
  }
});

Deno.test("qconv16 split over two threads (by groups, by channels) gives the single-thread bits", async () => {
  for (
    const [shape, attrs, dims] of [
      [[16, 48, 5, 5], { group: 2, pads: [2, 2, 2, 2] }, [1, 96, 13, 13]],
      [[24, 3, 11, 11], { strides: [4, 4] }, [1, 3, 59, 59]],
    ] as [QConvWeights["shape"], Attrs, ConvDims][]
  ) {
    const layer = randomConv(shape, attrs, 21);
    const single = await createQConvKernel({ ...layer, weights: layer.weights.slice() });
    const helpers = new KernelHelpers(2);
    const split = await createSplitConvKernel(layer, helpers);
    assert.ok(split, `W [${shape}] splits`);
    try {
      const x = randomFloats(size(dims), 22, -1, 6);
      // The groups' ranges differ, so per-group scales matter.
      for (let i = 0; i < x.length / 2; i++) x[i] *= 40;
      assert.equal(mismatches(split.run(x, dims, 1, 0, true), single.run(x, dims, 1, 0, true)), "");
    } finally {
      split.release();
      single.release();
    }
  }
});
