/**
 * Two builds of wasm/alexnet_kernels.wasm on AlexNet's five int8 convolutions, its
 * three Gemms (uint8 and int16 inputs) and its three MaxPools, in one process,
 * interleaved call by call: outputs checked equal bit for bit first, then medians of
 * 30 calls each and their ratio, in wall time and in process CPU time (on a shared
 * machine the CPU time leaves out the waits other jobs add; batch 1, random int8
 * weights).
 *
 *   git show HEAD:wasm/alexnet_kernels.wasm > /tmp/old.wasm
 *   deno run -A bench/kernels_ab.ts /tmp/old.wasm [wasm/alexnet_kernels.wasm]
 */
import process from "node:process";
import { createMaxPoolKernel } from "../src/runtime/kernels/maxpool_wasm.ts";
import { createQConvKernel } from "../src/runtime/kernels/qconv_wasm.ts";
import { createQLinearKernel } from "../src/runtime/kernels/qlinear_wasm.ts";
import type { MaxPoolParams } from "../src/runtime/kernels/maxpool_reference.ts";
import type { ConvDims, QConvWeights } from "../src/runtime/kernels/qconv_reference.ts";
import { randomFloats, randomInts } from "../tests/runtime/kernels/_q_helpers.ts";

const [oldPath, newPath = "wasm/alexnet_kernels.wasm"] = Deno.args;
if (!oldPath) throw new TypeError("Cannot compare: pass the other build's .wasm path");
const [a, b] = [await Deno.readFile(oldPath), await Deno.readFile(newPath)];
type Attrs = Pick<QConvWeights, "group" | "strides" | "pads">;
const LAYERS: [string, QConvWeights["shape"], Attrs, ConvDims][] = [
  ["conv1", [96, 3, 11, 11], { strides: [4, 4] }, [1, 3, 224, 224]],
  ["conv2", [256, 48, 5, 5], { group: 2, pads: [2, 2, 2, 2] }, [1, 96, 27, 27]],
  ["conv3", [384, 256, 3, 3], { pads: [1, 1, 1, 1] }, [1, 256, 13, 13]],
  ["conv4", [384, 192, 3, 3], { group: 2, pads: [1, 1, 1, 1] }, [1, 384, 13, 13]],
  ["conv5", [256, 192, 3, 3], { group: 2, pads: [1, 1, 1, 1] }, [1, 384, 13, 13]],
];
const size = (v: readonly number[]) => v.reduce((p, q) => p * q, 1);
const median = (v: number[]) => [...v].sort((p, q) => p - q)[v.length >> 1];
console.log(
  `| layer | ${oldPath} ms | ${newPath} ms | ratio | CPU ms (old / new) | CPU ratio |\n` +
    "|---|---|---|---|---|---|",
);
let [sumA, sumB, cpuA, cpuB] = [0, 0, 0, 0];
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Checks both runs give the same bits, then times them interleaved and prints a row. */
function compare(name: string, runA: () => Float32Array, runB: () => Float32Array): void {
  const [ya, yb] = [runA(), runB()];
  if (!ya.every((v, i) => Object.is(v, yb[i]))) throw new Error(`${name}: the builds differ`);
  const [ta, tb, ca, cb]: number[][] = [[], [], [], []];
  for (let i = 0; i < 35; i++) {
    let [t, c] = [performance.now(), cpuMs()];
    runA();
    if (i >= 5) ta.push(performance.now() - t), ca.push(cpuMs() - c);
    [t, c] = [performance.now(), cpuMs()];
    runB();
    if (i >= 5) tb.push(performance.now() - t), cb.push(cpuMs() - c);
  }
  sumA += median(ta);
  sumB += median(tb);
  cpuA += median(ca);
  cpuB += median(cb);
  const [r, rc] = [median(tb) / median(ta), median(cb) / median(ca)];
  console.log(
    `| ${name} | ${median(ta).toFixed(2)} | ${median(tb).toFixed(2)} | ${r.toFixed(2)} | ` +
      `${median(ca).toFixed(2)} / ${median(cb).toFixed(2)} | ${rc.toFixed(2)} |`,
  );
}

for (const [name, shape, attrs, dims] of LAYERS) {
  const layer = {
    weights: randomInts(Int8Array, size(shape), 1, -127, 127),
    shape,
    weightScales: randomFloats(shape[0], 2, 1e-3, 1e-2),
    bias: randomFloats(shape[0], 3),
    ...attrs,
  };
  const ka = await createQConvKernel({ ...layer, wasm: a });
  const kb = await createQConvKernel({ ...layer, wasm: b });
  const x = randomFloats(size(dims), 4, 0, 4);
  compare(name, () => ka.run(x, dims, 0.02, 0, true), () => kb.run(x, dims, 0.02, 0, true));
}

// fc6-fc8 ([M, K]), batch 1, with a calibrated uint8 input and as weight-only int16 layers.
const GEMMS = [["fc6", 4096, 9216], ["fc7", 4096, 4096], ["fc8", 1000, 4096]] as const;
for (const activations of ["uint8", "int16"] as const) {
  for (const [name, m, k] of GEMMS) {
    const layer = {
      weights: randomInts(Int8Array, m * k, 1, -127, 127),
      m,
      k,
      weightScales: randomFloats(m, 2, 1e-3, 1e-2),
      bias: randomFloats(m, 3),
      activations,
    };
    const [ka, kb] = [
      await createQLinearKernel({ ...layer, wasm: a }),
      await createQLinearKernel({ ...layer, wasm: b }),
    ];
    const x = randomFloats(k, 4, 0, 4);
    const [oa, ob] = [new Float32Array(m), new Float32Array(m)];
    compare(
      `${name} (${activations})`,
      () => ka.run(x, 1, 0.02, 3, true, oa),
      () => kb.run(x, 1, 0.02, 3, true, ob),
    );
    ka.release();
    kb.release();
  }
}

// pool1, pool2, pool5: 3x3, stride 2, ceil mode.
const POOLS: [string, ConvDims][] = [
  ["pool1", [1, 96, 55, 55]],
  ["pool2", [1, 256, 27, 27]],
  ["pool5", [1, 256, 13, 13]],
];
for (const [name, dims] of POOLS) {
  const params: MaxPoolParams = { kernelShape: [3, 3], strides: [2, 2], ceilMode: true };
  const [pa, pb] = [
    await createMaxPoolKernel({ ...params, wasm: a }),
    await createMaxPoolKernel({ ...params, wasm: b }),
  ];
  const x = randomFloats(size(dims), 5, -1, 3);
  const [oa, ob] = [
    new Float32Array(size(pa.outputDims(dims))),
    new Float32Array(size(pa.outputDims(dims))),
  ];
  compare(name, () => pa.run(x, dims, oa), () => pb.run(x, dims, ob));
}
console.log(
  `| all | ${sumA.toFixed(1)} | ${sumB.toFixed(1)} | ${(sumB / sumA).toFixed(2)} | ` +
    `${cpuA.toFixed(1)} / ${cpuB.toFixed(1)} | ${(cpuB / cpuA).toFixed(2)} |`,
);
