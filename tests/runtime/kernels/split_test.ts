import assert from "node:assert/strict";
import {
  createQConvKernel,
  createQLinearKernel,
  type QConvWeights,
  type QLinearWeights,
} from "../../../src/runtime/kernels/mod.ts";
import {
  type ChainOp,
  convSlices,
  createSplitChain,
  createSplitConvKernel,
  createSplitLinearKernel,
  KernelHelpers,
  linearSlices,
} from "../../../src/runtime/kernels/split.ts";
import type { ConvDims } from "../../../src/runtime/kernels/qconv_reference.ts";
import { planChain } from "../../../src/runtime/kernels/_split_chain.ts";
import { instantiateQ } from "../../../src/runtime/kernels/q_wasm.ts";
import { createLrnKernel, createMaxPoolKernel } from "../../../src/runtime/kernels/mod.ts";
import { mismatches, randomFloats, randomInts } from "./_q_helpers.ts";

const size = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

function randomConv(
  shape: QConvWeights["shape"],
  attrs: Omit<QConvWeights, "weights" | "shape" | "weightScales">,
  seed: number,
): QConvWeights {
  return {
    weights: randomInts(Int8Array, size(shape), seed, -127, 127),
    shape,
    weightScales: randomFloats(shape[0], seed + 1, 1e-4, 0.02),
    bias: randomFloats(shape[0], seed + 2, -1, 1),
    ...attrs,
  };
}

// [W shape, attributes, x dims, threads]: split by groups (2 of 2, 2 of 4 groups), by
// output channels (M not a multiple of 4 or of the threads), 3 threads, batch > 1.
const CONVS: [
  QConvWeights["shape"],
  Omit<QConvWeights, "weights" | "shape" | "weightScales">,
  ConvDims,
  number,
][] = [
  [[12, 8, 5, 5], { group: 2, pads: [2, 2, 2, 2] }, [1, 16, 13, 13], 2], // conv2-like
  [[16, 4, 3, 3], { group: 4, pads: [1, 1, 1, 1] }, [2, 16, 7, 6], 2],
  [[18, 3, 11, 11], { strides: [4, 4] }, [1, 3, 39, 39], 2], // conv1-like, M = 18
  [[13, 6, 3, 3], { pads: [1, 1, 1, 1] }, [3, 6, 5, 5], 3],
  [[9, 2, 1, 1], { group: 3 }, [1, 6, 4, 4], 3],
];

for (const [shape, attrs, dims, threads] of CONVS) {
  Deno.test(
    `a Conv [${shape}] ${
      JSON.stringify(attrs)
    } split over ${threads} threads equals the unsplit kernel bit for bit`,
    { sanitizeOps: false, sanitizeResources: false },
    async () => {
      const layer = randomConv(shape, attrs, size(shape));
      const whole = await createQConvKernel(layer);
      const helpers = new KernelHelpers(threads);
      const split = await createSplitConvKernel(layer, helpers);
      assert.ok(split, "the layer splits");
      try {
        for (const [seed, relu] of [[1, true], [2, false]] as const) {
          const x = randomFloats(size(dims), seed + size(dims), -3, 3);
          const expected = whole.run(x, dims, 0.02, 128, relu);
          const bad = mismatches(split.run(x, dims, 0.02, 128, relu), expected);
          assert.equal(bad, "", bad);
        }
        // A second batch size reuses (and grows) the shared buffers.
        const big: ConvDims = [dims[0] + 1, dims[1], dims[2], dims[3]];
        const x = randomFloats(size(big), 7, -3, 3);
        assert.equal(
          mismatches(split.run(x, big, 0.05, 3, true), whole.run(x, big, 0.05, 3, true)),
          "",
        );
      } finally {
        split.release();
        whole.release();
      }
    },
  );
}

Deno.test(
  "a Gemm split over 2 and 3 threads equals the unsplit kernel bit for bit, batch 1 and 3",
  { sanitizeOps: false, sanitizeResources: false },
  async () => {
    for (const [m, k, threads] of [[37, 100, 2], [4096, 96, 2], [10, 33, 3]]) {
      const layer: QLinearWeights = {
        weights: randomInts(Int8Array, m * k, m + k, -127, 127),
        m,
        k,
        weightScales: randomFloats(m, m, 1e-4, 0.02),
        bias: randomFloats(m, k, -1, 1),
      };
      const whole = await createQLinearKernel(layer);
      const split = await createSplitLinearKernel(layer, new KernelHelpers(threads));
      assert.ok(split);
      try {
        for (const n of [1, 3]) {
          const x = randomFloats(n * k, n + m, -2, 2);
          const bad = mismatches(
            split.run(x, n, 0.01, 100, true),
            whole.run(x, n, 0.01, 100, true),
          );
          assert.equal(bad, "", `[${m}, ${k}] over ${threads}, n ${n}: ${bad}`);
        }
      } finally {
        split.release();
        whole.release();
      }
    }
  },
);

Deno.test("layers split into slices of whole groups or of 4-row blocks, weights not shared", () => {
  const conv = randomConv([96, 3, 11, 11], {}, 1);
  const slices = convSlices(conv, 2)!;
  assert.deepEqual(
    slices.map((s) => [s.m0, s.m1, s.c0, s.c1]),
    [[0, 48], [48, 96]].map((r) => [...r, 0, 3]),
  );
  assert.equal(slices[1].layer.weights.length, 48 * 3 * 11 * 11);
  assert.notEqual(slices[1].layer.weights.buffer, conv.weights.buffer);
  const grouped = convSlices(randomConv([256, 48, 5, 5], { group: 2 }, 2), 2)!;
  assert.deepEqual(grouped.map((s) => [s.m0, s.m1, s.c0, s.c1, s.layer.group]), [
    [0, 128, 0, 48, 1],
    [128, 256, 48, 96, 1],
  ]);
  // 3 groups cannot go to 2 threads evenly, and a grouped conv is not cut inside groups.
  assert.equal(convSlices(randomConv([6, 1, 1, 1], { group: 3 }, 3), 2), undefined);
  const rows = linearSlices({
    weights: new Int8Array(10 * 2),
    m: 10,
    k: 2,
    weightScales: new Float32Array(10),
  }, 3)!;
  assert.deepEqual(rows.map((s) => [s.m0, s.m1]), [[0, 4], [4, 8], [8, 10]]);
  assert.equal(
    linearSlices({ weights: new Int8Array(3), m: 3, k: 1, weightScales: new Float32Array(3) }, 2),
    undefined,
  );
});

Deno.test("one thread splits nothing", async () => {
  const layer = randomConv([8, 2, 3, 3], {}, 4);
  assert.equal(await createSplitConvKernel(layer, new KernelHelpers(1)), undefined);
  assert.throws(() => new KernelHelpers(0), RangeError);
});

Deno.test("kernels sharing one instance give the same bits as their own instances and reuse blocks", async () => {
  const { instantiateQ } = await import("../../../src/runtime/kernels/q_wasm.ts");
  const instance = await instantiateQ("test");
  const convLayer = randomConv([16, 3, 3, 3], { pads: [1, 1, 1, 1] }, 11);
  const fcLayer: QLinearWeights = {
    weights: randomInts(Int8Array, 10 * 64, 12, -127, 127),
    m: 10,
    k: 64,
    weightScales: randomFloats(10, 13, 1e-3, 1e-2),
  };
  const [conv, fc] = [await createQConvKernel(convLayer), await createQLinearKernel(fcLayer)];
  const [sConv, sFc] = [
    await createQConvKernel({ ...convLayer, instance }),
    await createQLinearKernel({ ...fcLayer, instance }),
  ];
  const dims: ConvDims = [1, 3, 20, 20];
  const x = randomFloats(size(dims), 14, -1, 1), v = randomFloats(64, 15, -1, 1);
  let grown = 0;
  for (let i = 0; i < 3; i++) {
    assert.equal(
      mismatches(sConv.run(x, dims, 0.01, 128, true), conv.run(x, dims, 0.01, 128, true)),
      "",
    );
    assert.equal(mismatches(sFc.run(v, 1, 0.01, 128, false), fc.run(v, 1, 0.01, 128, false)), "");
    if (i === 0) grown = instance.memory.buffer.byteLength;
  }
  // After the first round every call finds its blocks free in the heap: no growth.
  assert.equal(instance.memory.buffer.byteLength, grown);
});

// Chains: [ops, x dims] against the same kernels run one after the other on one thread.
type Step = ChainOp;
const conv = (
  shape: QConvWeights["shape"],
  attrs: Omit<QConvWeights, "weights" | "shape" | "weightScales">,
  seed: number,
  relu = true,
): Step => ({
  op: "conv",
  layer: randomConv(shape, attrs, seed),
  xScale: 0.02,
  xZeroPoint: 3,
  relu,
});
const LRN: Step = { op: "lrn", params: { size: 5, alpha: 1e-2, beta: 0.75, bias: 1 } };
const POOL: Step = { op: "pool", params: { kernelShape: [3, 3], strides: [2, 2] } };

/** The chain on one thread, layer by layer: y: [N, M, OH, OW]. */
async function unsplitChain(ops: Step[], x: Float32Array, dims: ConvDims): Promise<Float32Array> {
  let [cur, d] = [x, dims];
  for (const op of ops) {
    if (op.op === "conv") {
      const k = await createQConvKernel(op.layer);
      [cur, d] = [k.run(cur, d, op.xScale, op.xZeroPoint, op.relu), k.outputDims(d)];
      k.release();
    } else if (op.op === "lrn") cur = (await createLrnKernel()).run(cur, d, op.params);
    else {
      const k = await createMaxPoolKernel(op.params);
      [cur, d] = [k.run(cur, d), k.outputDims(d)];
    }
  }
  return cur;
}

const CHAINS: [string, () => Step[], ConvDims, number][] = [
  // conv1 -> LRN -> pool1: the LRN halo crosses the cut at channel 48 of 96.
  ["conv -> LRN -> MaxPool", () => [conv([96, 3, 5, 5], { strides: [2, 2] }, 21), LRN, POOL], [
    1,
    3,
    23,
    23,
  ], 2],
  // conv1 .. conv2: conv2's 2 groups read the two halves of pool1.
  [
    "conv -> LRN -> MaxPool -> grouped conv",
    () => [
      conv([64, 3, 3, 3], { strides: [2, 2] }, 22),
      LRN,
      POOL,
      conv([32, 32, 3, 3], { group: 2, pads: [1, 1, 1, 1] }, 26),
    ],
    [2, 3, 21, 21],
    2,
  ],
  // LRN2 -> pool2: no conv, so planned per call from the channels; halos both sides.
  ["LRN -> MaxPool", () => [LRN, POOL], [1, 64, 9, 9], 2],
  ["LRN -> MaxPool", () => [LRN, POOL], [2, 64, 9, 9], 3],
  // conv3 -> conv4 -> conv5 -> pool5: a plain conv cut where the grouped ones cut.
  [
    "conv -> grouped conv -> grouped conv -> MaxPool",
    () => [
      conv([24, 8, 3, 3], { pads: [1, 1, 1, 1] }, 23),
      conv([24, 12, 3, 3], { group: 2, pads: [1, 1, 1, 1] }, 24),
      conv([16, 12, 3, 3], { group: 2, pads: [1, 1, 1, 1] }, 25, false),
      POOL,
    ],
    [1, 8, 9, 9],
    2,
  ],
];

for (const [name, make, dims, threads] of CHAINS) {
  Deno.test(
    `a chain ${name} split over ${threads} threads equals its layers run one by one, bit for bit`,
    { sanitizeOps: false, sanitizeResources: false },
    async () => {
      const instance = await instantiateQ("test");
      const ops = make();
      const x = randomFloats(size(dims), size(dims), -1, 3);
      const expected = await unsplitChain(ops, x, dims);
      const helpers = new KernelHelpers(threads);
      const chain = await createSplitChain(ops, helpers, instance);
      assert.ok(chain, "the chain splits");
      try {
        assert.deepEqual(chain.outputDims(dims).reduce((a, b) => a * b), expected.length);
        for (let i = 0; i < 2; i++) assert.equal(mismatches(chain.run(x, dims), expected), "");
        // A larger batch grows the shared buffer and hands the new one to the helper.
        const big: ConvDims = [dims[0] + 2, dims[1], dims[2], dims[3]];
        const xb = randomFloats(size(big), 5, -1, 3);
        assert.equal(mismatches(chain.run(xb, big), await unsplitChain(ops, xb, big)), "");
      } finally {
        chain.release();
      }
    },
  );
}

Deno.test(
  "chains read the previous chain's output in place and still give the unsplit bits",
  { sanitizeOps: false, sanitizeResources: false },
  async () => {
    const instance = await instantiateQ("test");
    // AlexNet's three chains: conv1 .. conv2, LRN2 -> pool2, conv3 .. pool5.
    const chains = [
      [
        conv([64, 3, 3, 3], { strides: [2, 2] }, 31),
        LRN,
        POOL,
        conv([64, 32, 3, 3], {
          group: 2,
          pads: [1, 1, 1, 1],
        }, 32),
      ],
      [LRN, POOL],
      [conv([48, 64, 3, 3], { pads: [1, 1, 1, 1] }, 33), conv([32, 24, 3, 3], { group: 2 }, 34)],
    ];
    const helpers = new KernelHelpers(2);
    const split = [];
    for (const ops of chains) split.push(await createSplitChain(ops, helpers, instance));
    try {
      const dims: ConvDims = [1, 3, 47, 47];
      const x = randomFloats(size(dims), 35, -1, 2);
      let [cur, d] = [x, dims];
      for (const chain of split) {
        assert.ok(chain, "every chain splits");
        [cur, d] = [chain.run(cur, d), chain.outputDims(d)];
        assert.ok(cur.buffer instanceof SharedArrayBuffer, "the output stays in a shared buffer");
      }
      assert.equal(mismatches(cur, await unsplitChain(chains.flat(), x, dims)), "");
    } finally {
      for (const chain of split) chain?.release();
    }
  },
);

Deno.test("chain plans: LRN halos start at a multiple of size, groups keep their inputs", () => {
  const lrn = (size: number): Step => ({ op: "lrn", params: { size } });
  const plans = planChain([conv([96, 3, 11, 11], {}, 1), lrn(5), POOL], 3, 2)!;
  // Thread 1 ends with channels [48, 96); its LRN reads from 46, aligned down to 45.
  assert.deepEqual(plans.map((p) => [p.steps[0].out, p.steps[1].in, p.out]), [
    [[0, 50], [0, 50], [0, 48]],
    [[45, 96], [45, 96], [48, 96]],
  ]);
  // conv2 then LRN2: the halo would cost thread 0 group 1's im2col for 2 rows. Refused;
  // the chain ends at conv2 (whole groups) and LRN2 -> pool2 go as a chain of their own.
  assert.equal(planChain([conv([256, 48, 5, 5], { group: 2 }, 2), lrn(5)], 96, 2), undefined);
  const toConv2 = planChain(
    [
      conv([96, 3, 11, 11], {}, 1),
      lrn(5),
      POOL,
      conv([256, 48, 5, 5], { group: 2 }, 2),
    ],
    3,
    2,
  )!;
  assert.deepEqual(toConv2.map((p) => p.steps[3].pieces), [
    [{ m0: 0, m1: 128, c0: 0, c1: 48 }],
    [{ m0: 128, m1: 256, c0: 48, c1: 96 }],
  ]);
  assert.deepEqual(planChain([lrn(5), POOL], 256, 2)!.map((p) => p.steps[0].out), [
    [0, 130],
    [125, 256],
  ]);
  // LRN computed whole by both threads (a plain conv after it reads every channel): refused.
  assert.equal(planChain([lrn(5), conv([64, 256, 3, 3], {}, 7)], 256, 2), undefined);
  // conv3 -> conv4 (2 groups): thread 0 computes conv3's first half only.
  const deep = planChain(
    [
      conv([384, 256, 3, 3], {}, 3),
      conv([384, 192, 3, 3], { group: 2 }, 4),
    ],
    256,
    2,
  )!;
  assert.deepEqual(deep[0].steps.map((s) => s.out), [[0, 192], [0, 192]]);
  // Cut across groups, conv4 would need all of conv3 on every thread: refused.
  assert.equal(
    planChain([conv([384, 256, 3, 3], {}, 3), conv([384, 192, 3, 3], { group: 2 }, 4)], 256, 3),
    undefined,
  );
  // Channels that do not fit the next op: refused.
  assert.equal(planChain([conv([8, 3, 1, 1], {}, 5), conv([8, 4, 1, 1], {}, 6)], 3, 2), undefined);
});
