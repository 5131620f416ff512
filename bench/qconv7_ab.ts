/**
 * AlexNet's five convolutions with 7-bit weights (-63..63) and uint8 activations, three
 * ways in one process, interleaved call by call: the int8 GEMM (`sevenBit: false`, what
 * every layer ran before), the 7-bit kernel on its core-SIMD stand-in, and the 7-bit
 * kernel on the relaxed-SIMD dot block (wasm/relaxed/dot7.wat). Outputs are checked
 * equal bit for bit first; then medians of 30 calls each (wall and process CPU time)
 * and the ratios to the int8 GEMM. Batch 1, random weights.
 *
 *   deno run -A bench/qconv7_ab.ts [--runs 30]
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { createQConvKernel, type QConvKernel } from "../src/runtime/kernels/qconv_wasm.ts";
import { instantiateQ, usesRelaxedDot } from "../src/runtime/kernels/q_wasm.ts";
import type { ConvDims, QConvWeights } from "../src/runtime/kernels/qconv_reference.ts";
import { randomFloats, randomInts } from "../tests/runtime/kernels/_q_helpers.ts";

const { values } = parseArgs({ args: Deno.args, options: { runs: { type: "string" } } });
const runs = Number(values.runs ?? 30);
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
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const relaxed = await instantiateQ("bench");
if (!usesRelaxedDot(relaxed)) throw new Error("Cannot compare: this engine refuses relaxed SIMD");
const core = await instantiateQ("bench", undefined, { relaxed: false });
const WAYS = ["int8 GEMM", "7-bit, core-SIMD stand-in", "7-bit, relaxed dot"];
console.log(
  `| layer | ${
    WAYS.map((w) => `${w} ms (CPU ms)`).join(" | ")
  } | ratios to the int8 GEMM (CPU) |\n` +
    "|---|---|---|---|---|",
);
const totals = WAYS.map(() => [0, 0]);
for (const [name, shape, attrs, dims] of LAYERS) {
  const layer = {
    weights: randomInts(Int8Array, size(shape), 1, -63, 63),
    shape,
    weightScales: randomFloats(shape[0], 2, 1e-3, 1e-2),
    bias: randomFloats(shape[0], 3),
    ...attrs,
  };
  const kernels: QConvKernel[] = [
    await createQConvKernel({ ...layer, sevenBit: false }),
    await createQConvKernel({ ...layer, instance: core }),
    await createQConvKernel({ ...layer, instance: relaxed }),
  ];
  const x = randomFloats(size(dims), 4, 0, 4);
  const outs = kernels.map((k) => k.run(x, dims, 0.02, 3, true));
  for (const y of outs.slice(1)) {
    if (!y.every((v, i) => Object.is(v, outs[0][i]))) throw new Error(`${name}: outputs differ`);
  }
  const wall: number[][] = kernels.map(() => []);
  const cpu: number[][] = kernels.map(() => []);
  for (let i = 0; i < runs + 5; i++) {
    kernels.forEach((k, j) => {
      const [t, c] = [performance.now(), cpuMs()];
      k.run(x, dims, 0.02, 3, true, outs[j]);
      if (i >= 5) wall[j].push(performance.now() - t), cpu[j].push(cpuMs() - c);
    });
  }
  const m = kernels.map((_, j) => [median(wall[j]), median(cpu[j])]);
  m.forEach(([w, c], j) => (totals[j][0] += w, totals[j][1] += c));
  const row = (m: number[][]) =>
    `${m.map(([w, c]) => `${w.toFixed(2)} (${c.toFixed(2)})`).join(" | ")} | ` +
    m.slice(1).map(([w, c]) => `${(w / m[0][0]).toFixed(2)} (${(c / m[0][1]).toFixed(2)})`)
      .join(", ");
  console.log(`| ${name} | ${row(m)} |`);
  kernels.forEach((k) => k.release());
}
const row = totals.map(([w, c]) => `${w.toFixed(1)} (${c.toFixed(1)})`).join(" | ");
const ratios = totals.slice(1).map(([w, c]) =>
  `${(w / totals[0][0]).toFixed(2)} (${(c / totals[0][1]).toFixed(2)})`
);
console.log(`| all | ${row} | ${ratios.join(", ")} |`);
