import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import {
  type ConvDims,
  createQConvKernel,
  qconvAccumulateReference,
  qconvReference,
  type QConvWeights,
  quantizeLinearReference,
} from "../../../src/runtime/kernels/mod.ts";
import { createOrtConv, mismatches, randomFloats, randomInts } from "./_q_helpers.ts";

ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

type Attrs = Pick<QConvWeights, "group" | "strides" | "pads" | "dilations">;

function randomConv(shape: QConvWeights["shape"], attrs: Attrs, seed: number): QConvWeights {
  const len = shape.reduce((a, b) => a * b, 1);
  return {
    weights: randomInts(Int8Array, len, seed, -127, 127),
    shape,
    weightScales: randomFloats(shape[0], seed + 1, 1e-4, 0.02),
    bias: randomFloats(shape[0], seed + 2, -1, 1),
    ...attrs,
  };
}

const size = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

// [W shape, attributes, x dims]: groups, strides, asymmetric pads, dilations, K around
// the 16-wide chunks (K = C/G * kH * kW), M/G around the 4-row blocks, N > 1.
const CASES: [QConvWeights["shape"], Attrs, ConvDims][] = [
  [[1, 1, 1, 1], {}, [1, 1, 1, 1]],
  [[3, 1, 1, 1], {}, [2, 1, 3, 2]],
  [[5, 3, 3, 3], { pads: [1, 1, 1, 1] }, [2, 3, 7, 6]],
  [[6, 2, 2, 3], { group: 2, strides: [2, 1], pads: [0, 2, 1, 0], dilations: [2, 1] }, [
    1,
    4,
    9,
    8,
  ]],
  [[4, 16, 1, 1], { group: 1 }, [3, 16, 2, 3]],
  [[9, 17, 1, 1], { group: 3 }, [1, 51, 4, 4]],
  [[8, 2, 3, 3], { group: 4, strides: [3, 3], pads: [2, 2, 2, 2] }, [2, 8, 10, 10]],
  [[7, 5, 5, 5], { pads: [4, 4, 4, 4], dilations: [2, 2] }, [1, 5, 3, 4]], // windows mostly padding
  [[16, 3, 11, 11], { strides: [4, 4] }, [1, 3, 67, 67]], // conv1-like
  [[12, 8, 5, 5], { group: 2, pads: [2, 2, 2, 2] }, [1, 16, 27, 27]], // conv2-like
  // K 288: the columns are built 170 pixels at a time; 361 pixels = 2 tiles + an odd 21.
  [[6, 32, 3, 3], { group: 2, pads: [1, 1, 1, 1] }, [2, 64, 19, 19]],
];

for (const [shape, attrs, dims] of CASES) {
  const label = `W [${shape}] ${JSON.stringify(attrs)} on [${dims}]`;
  Deno.test(`qconv accumulate equals the int32 reference for ${label}`, async () => {
    const layer = randomConv(shape, attrs, size(shape) + size(dims));
    const kernel = await createQConvKernel(layer);
    try {
      for (const z of [0, 128, 255]) {
        const xq = randomInts(Uint8Array, size(dims), z + dims[2], 0, 255);
        xq.fill(0, 0, Math.min(xq.length, 7)); // runs of both saturated ends
        xq.fill(255, Math.max(0, xq.length - 7));
        const expected = qconvAccumulateReference(layer, xq, dims, z);
        assert.equal(mismatches(kernel.accumulate(xq, dims, z), expected), "", `z_x ${z}`);
      }
    } finally {
      kernel.release();
    }
  });

  Deno.test(`qconv run equals the reference bit for bit for ${label}`, async () => {
    const layer = randomConv(shape, attrs, 3 * size(shape));
    const kernel = await createQConvKernel(layer);
    try {
      const x = randomFloats(size(dims), size(dims), -1, 3);
      for (const relu of [false, true]) {
        const y = kernel.run(x, dims, 3 / 255, 60, relu);
        assert.equal(mismatches(y, qconvReference(layer, x, dims, 3 / 255, 60, relu)), "");
      }
    } finally {
      kernel.release();
    }
  });
}

// AlexNet's convolutions at batch 1 on 224x224 (bvlc_alexnet: conv1 has no padding).
const ALEXNET: [string, QConvWeights["shape"], Attrs, ConvDims][] = [
  ["conv1", [96, 3, 11, 11], { strides: [4, 4] }, [1, 3, 224, 224]],
  ["conv2", [256, 48, 5, 5], { group: 2, pads: [2, 2, 2, 2] }, [1, 96, 27, 27]],
  ["conv3", [384, 256, 3, 3], { pads: [1, 1, 1, 1] }, [1, 256, 13, 13]],
  ["conv4", [384, 192, 3, 3], { group: 2, pads: [1, 1, 1, 1] }, [1, 384, 13, 13]],
  ["conv5", [256, 192, 3, 3], { group: 2, pads: [1, 1, 1, 1] }, [1, 384, 13, 13]],
];

for (const [name, shape, attrs, dims] of ALEXNET) {
  Deno.test(`qconv is exact and agrees with onnxruntime-web's fp32 Conv on the dequantized values for AlexNet's ${name}`, async () => {
    const layer = randomConv(shape, attrs, name.length * 1000 + shape[0]);
    const kernel = await createQConvKernel(layer);
    const [xScale, z] = [6 / 255, 20];
    const x = randomFloats(size(dims), shape[0], -0.5, 6);
    const xq = quantizeLinearReference(x, xScale, z);
    // What a QDQ graph hands Conv: DequantizeLinear of x_q and of W (per channel).
    const xd = Float32Array.from(xq, (q) => (q - z) * Math.fround(xScale));
    const per = size(shape) / shape[0];
    const wd = Float32Array.from(
      layer.weights,
      (w, i) => w * layer.weightScales[Math.floor(i / per)],
    );
    const theirs = await createOrtConv(wd, shape, layer.bias!, {
      group: attrs.group ?? 1,
      strides: [...(attrs.strides ?? [1, 1])],
      pads: [...(attrs.pads ?? [0, 0, 0, 0])],
      dilations: [1, 1],
    });
    try {
      assert.equal(
        mismatches(kernel.accumulate(xq, dims, z), qconvAccumulateReference(layer, xq, dims, z)),
        "",
      );
      const ours = kernel.run(x, dims, xScale, z, false);
      const expected = await theirs.run(xd, [...dims]);
      let scale = 0;
      for (const v of expected) scale = Math.max(scale, Math.abs(v));
      for (let i = 0; i < ours.length; i++) {
        assert.ok(
          Math.abs(ours[i] - expected[i]) <= 1e-5 * scale,
          `[${i}]: ours ${ours[i]}, onnxruntime-web ${expected[i]} (max |y| ${scale})`,
        );
      }
    } finally {
      kernel.release();
      await theirs.release();
    }
  });
}

Deno.test("qconv outputDims follows ONNX's floor((in + pads - span) / stride) + 1", async () => {
  const kernel = await createQConvKernel(
    randomConv([4, 2, 3, 3], { group: 2, strides: [2, 3], pads: [1, 0, 0, 2] }, 1),
  );
  try {
    assert.deepEqual(kernel.outputDims([5, 4, 10, 11]), [5, 4, 5, 4]);
    assert.throws(
      () => kernel.outputDims([1, 3, 10, 10]),
      /x has 3 channels, the weights take 2 x 2 groups/,
    );
    assert.throws(
      () => kernel.outputDims([1, 4, 1, 1]),
      /the 3x3 kernel does not fit the padded 2x3 input/,
    );
  } finally {
    kernel.release();
  }
});

Deno.test("createQConvKernel rejects inconsistent layers with the action first", async () => {
  const ok = randomConv([4, 2, 3, 3], { group: 2 }, 1);
  const cases: [Partial<QConvWeights>, RegExp][] = [
    [
      { group: 3 },
      /^RangeError: Cannot create the quantized Conv kernel: M = 4 is not a multiple of group = 3/,
    ],
    [{ shape: [4, 2, 3] as unknown as QConvWeights["shape"] }, /shape must be \[M, C\/G, kH, kW\]/],
    [{ weights: new Int8Array(5) }, /weights must be an Int8Array of 72 values/],
    [{ strides: [0, 1] }, /strides must be integers >= 1/],
    [
      { pads: [1, 1, 1] as unknown as QConvWeights["pads"] },
      /pads must be \[top, left, bottom, right\]/,
    ],
    [
      { shape: [4, 8000, 3, 3], weights: new Int8Array(4 * 72000) },
      /C\/G \* kH \* kW = 72000 is above 65536/,
    ],
  ];
  for (const [change, message] of cases) {
    await assert.rejects(createQConvKernel({ ...ok, ...change }), (e: Error) => {
      assert.match(`${e.name}: ${e.message}`, message);
      return true;
    });
  }
});

Deno.test("qconv run rejects bad calls, handles N = 0, and throws after release", async () => {
  const kernel = await createQConvKernel(randomConv([2, 1, 3, 3], {}, 1));
  assert.throws(
    () => kernel.run(new Float32Array(10), [1, 1, 3, 3], 0.1, 0, false),
    /Cannot run the quantized Conv: x has 10 values but dims \[1,1,3,3\] need 9/,
  );
  assert.throws(
    () => kernel.run(new Float32Array(9), [1, 1, 3, 3], -1, 0, false),
    /positive finite/,
  );
  assert.throws(
    () => kernel.run(new Float32Array(9), [1, 1, 3, 3], 1, 0, false, new Float32Array(3)),
    /out must be a Float32Array of 2 values/,
  );
  assert.equal(kernel.run(new Float32Array(0), [0, 1, 3, 3], 1, 0, false).length, 0);
  kernel.release();
  assert.throws(
    () => kernel.run(new Float32Array(9), [1, 1, 3, 3], 1, 0, false),
    /the kernel was released/,
  );
});
