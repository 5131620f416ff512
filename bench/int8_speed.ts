/**
 * int8 vs fp32 AlexNet inference, side by side in one process at one thread
 * count: onnxruntime-web fp32, onnxruntime-web on the QDQ int8 model, our
 * kernels on the QDQ int8 model (every node: int8 Conv/Gemm with their Q/DQ and
 * ReLU, LRN, MaxPool, Softmax; no onnxruntime session; with --threads 2 the
 * runs of Conv, LRN and MaxPool go as three chains split across a helper Worker,
 * each Gemm split alone), and onnxruntime-node (native)
 * fp32 and int8 on the same files (`--set native`, its own process).
 *
 * `--set qoperator` times ours against native int8 on one QOperator file (QLinearConv,
 * QLinearMatMul + QLinearAdd: the layout onnxruntime's own int8 kernels are built for),
 * interleaved in one process, with onnxruntime-web fp32 beside them. The file is the
 * tests' builder's AlexNet (tests/model/_qoperator_models.ts, random weights, the zoo's
 * structure), made once into models/alexnet-synthetic-qoperator.onnx (~30 s);
 * `--weight-bits 7` takes its twin with 7-bit weights (-63..63, what relaxed SIMD's
 * 7-bit operand takes; wasm/README.md), models/alexnet-synthetic-qoperator-w7.onnx, and
 * adds ours with the 7-bit Conv kernel off (`sevenBitConv: false`) beside it.
 *
 * `--write NAME` adds this run's table to bench/results/NAME-<date>.json (the shape of
 * bench/_results.ts, rendered by `deno task bench:report`): one table per thread count
 * and set, so the 1- and 2-thread runs of one day share a file. A NAME other than
 * `int8-native` gets its own section title and plot, beside that one's.
 *
 *   deno run -A bench/int8_speed.ts [--threads N] [--runs 30] [--set web|native|qoperator]
 *                                   [--weight-bits 8|7]
 *                                   [--pause 20] [--also models/other-int8.json]
 *                                   [--write int8-native]
 *
 * Needs models/alexnet-synthetic.onnx (deno task model) and
 * models/alexnet-synthetic-int8.onnx (deno task quantize).
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import * as ortNode from "onnxruntime-node";
import { topK } from "../src/classify/mod.ts";
import { decodeImage, preprocess } from "../src/image/mod.ts";
import { loadModel } from "../src/model/store.ts";
import { availableCores, type Backend, createWasmBackend } from "../src/runtime/mod.ts";
import { buildQOperatorAlexNet } from "../tests/model/_qoperator_models.ts";
import {
  type BenchResult,
  commitLine,
  machineLine,
  type ResultPlot,
  type ResultTable,
} from "./_results.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string" },
    threads: { type: "string" },
    set: { type: "string" },
    pause: { type: "string" },
    // Another int8 manifest to time beside the default one (e.g. another layout).
    also: { type: "string" },
    // Write the table into a bench:report result (bench/_results.ts) named this.
    write: { type: "string" },
    // `--set qoperator`: the file's weight bits (8, or 7 for relaxed SIMD's operand).
    "weight-bits": { type: "string" },
  },
});
const runs = Number(values.runs ?? 30);
const weightBits = values["weight-bits"] === "7" ? 7 : 8;
const threads = Number(values.threads ?? availableCores());
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const fp32 = await loadModel(new URL("../models/alexnet-synthetic.json", import.meta.url));
const int8 = await loadModel(new URL("../models/alexnet-synthetic-int8.json", import.meta.url));
const also = values.also
  ? await loadModel(new URL(values.also, `file://${Deno.cwd()}/`))
  : undefined;
const io = { inputName: "data_0", outputName: "softmaxout_1", threads };
const photo = await Deno.readFile(new URL("../tests/fixtures/chelsea.jpg", import.meta.url));
const x = preprocess(await decodeImage(photo), fp32.manifest.preprocessing);
const dims = [1, 3, 224, 224];

const node = async (bytes: Uint8Array): Promise<Pick<Backend, "run">> => {
  const s = await ortNode.InferenceSession.create(bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    // No spinning: idle native workers would otherwise keep the cores busy.
    extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } },
  });
  return {
    run: async (data, d) => {
      const out = (await s.run({ data_0: new ortNode.Tensor("float32", data, d) })).softmaxout_1;
      return { data: out.data as Float32Array, dims: out.dims };
    },
  };
};

/** The QOperator AlexNet of the tests' builder, built once into models/. */
async function qoperatorFile(): Promise<Uint8Array> {
  const name = `alexnet-synthetic-qoperator${weightBits === 7 ? "-w7" : ""}.onnx`;
  const path = new URL(`../models/${name}`, import.meta.url);
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  console.log("Building the QOperator AlexNet (tests/model/_qoperator_models.ts, ~30 s)");
  const bytes = (await buildQOperatorAlexNet({ calibration: 2, weightBits })).bytes;
  await Deno.writeFile(path, bytes);
  return bytes;
}

const qoperator = async (): Promise<[string, Pick<Backend, "run">][]> => {
  const bytes = await qoperatorFile();
  return [
    // Native first: the correctness check below takes the first row as the reference.
    ["onnxruntime-node int8 (native), QOperator file", await node(bytes)],
    [
      "ours: int8 kernels, QOperator file",
      await createWasmBackend(bytes, { ...io, eagerThreads: true, int8: "custom" }),
    ],
    // The 7-bit file: the same kernels with the 7-bit Conv kernel off (the int8 GEMM).
    ...(weightBits === 7
      ? [[
        "ours: int8 kernels, QOperator file, 7-bit Conv kernel off",
        await createWasmBackend(bytes, {
          ...io,
          eagerThreads: true,
          int8: "custom",
          sevenBitConv: false,
        }),
      ]] as [string, Pick<Backend, "run">][]
      : []),
    // The float synthetic AlexNet (another file: its top-1 is not compared).
    [
      "onnxruntime-web fp32 (synthetic fp32 file)",
      await createWasmBackend(fp32.bytes, { ...io, eagerThreads: true }),
    ],
  ];
};

// onnxruntime-node's pool and onnxruntime-web's pool fight for the 2 cores when
// both live in one process, so `--set native` runs the native pair on its own.
const contenders: [string, Pick<Backend, "run">][] = values.set === "qoperator"
  ? await qoperator()
  : values.set === "native"
  ? [
    ["onnxruntime-node fp32 (native)", await node(fp32.bytes)],
    ["onnxruntime-node int8 (native)", await node(int8.bytes)],
    ...(also
      ? [[`onnxruntime-node int8 (native), ${also.manifest.name}`, await node(also.bytes)]] as [
        string,
        Pick<Backend, "run">,
      ][]
      : []),
  ]
  : [
    ["onnxruntime-web fp32", await createWasmBackend(fp32.bytes, { ...io, eagerThreads: true })],
    [
      "onnxruntime-web int8 (same file)",
      await createWasmBackend(int8.bytes, { ...io, eagerThreads: true, int8: "ort" }),
    ],
    [
      "ours: int8 kernels, whole model",
      await createWasmBackend(int8.bytes, { ...io, eagerThreads: true, int8: "custom" }),
    ],
    ...(also
      ? [[
        `ours: int8 kernels, ${also.manifest.name}`,
        await createWasmBackend(also.bytes, { ...io, eagerThreads: true, int8: "custom" }),
      ]] as [string, Pick<Backend, "run">][]
      : []),
  ];

// Correctness first: every contender's top-1 beside the first row's (fp32; with
// `--set qoperator`, native int8 on the same file, which ours must match).
const reference = topK((await contenders[0][1].run(x, dims)).data, 5, []).map((p) => p.index);
for (const [name, c] of contenders) {
  const top = topK((await c.run(x, dims)).data, 5, []).map((p) => p.index);
  console.log(
    `${name.padEnd(38)} top-5 ${top.join(",")}${
      top[0] === reference[0] || name.includes("synthetic fp32 file")
        ? ""
        : `  (top-1 differs from ${contenders[0][0]})`
    }`,
  );
}

const times = contenders.map(() => [] as number[]);
// CPU time of the whole process per run (every thread: ours' helper Worker, onnxruntime's
// pools): what a run costs, and at 1 thread its time without the waits a loaded
// machine adds (other jobs share these cores).
const cpuTimes = contenders.map(() => [] as number[]);
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
// Long warm-up: onnxruntime-web at 2 threads runs ~2.5x slower for its first ~20 runs.
for (let i = 0; i < 25; i++) for (const [, c] of contenders) await c.run(x, dims);
// Each timed run starts after a 20 ms pause, for every contender: right after an
// onnxruntime-web run its pool threads keep a core busy for a while, and whoever runs
// next at 2 threads pays for it (ours: 32 ms right after, 20 ms after a pause; the
// server never mixes the two). `--pause 0` times back to back.
const pause = Number(values.pause ?? 20);
for (let i = 0; i < runs; i++) {
  for (const [j, [, c]] of contenders.entries()) {
    if (pause > 0) await new Promise((r) => setTimeout(r, pause));
    const [t, c0] = [performance.now(), cpuMs()];
    await c.run(x, dims);
    times[j].push(performance.now() - t);
    cpuTimes[j].push(cpuMs() - c0);
  }
}
const base = median(times[0]);
console.log(
  `\nthreads ${threads}, ${runs} interleaved runs (${pause} ms pause before each), ${navigator.hardwareConcurrency} cores, ${
    new Date().toISOString().slice(0, 10)
  }`,
);
// The 10th percentile too: on a shared machine it shows what the runs that were
// left alone took, where the median also reflects the neighbours' load.
const p10 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 10)];
const base10 = p10(times[0]);
console.log(
  `| backend | median ms | img/s | vs ${contenders[0][0]} | p10 ms | p10 vs ${
    contenders[0][0]
  } | CPU ms | CPU vs first |`,
);
const baseCpu = median(cpuTimes[0]);
console.log("|---|---|---|---|---|---|---|---|");
for (const [j, [name]] of contenders.entries()) {
  const [m, q, c] = [median(times[j]), p10(times[j]), median(cpuTimes[j])];
  console.log(
    `| ${name} | ${m.toFixed(1)} | ${(1000 / m).toFixed(1)} | ${(m / base).toFixed(2)}x | ${
      q.toFixed(1)
    } | ${(q / base10).toFixed(2)}x | ${c.toFixed(1)} | ${(c / baseCpu).toFixed(2)}x |`,
  );
}
const setLabel = `${values.set ?? "web"}${weightBits === 7 ? " --weight-bits 7" : ""}`;
if (values.write) await writeTable(setLabel, values.write);
Deno.exit(0);

/** This run's table, added to (or replacing its thread count's in) today's result file. */
async function writeTable(set: string, bench: string): Promise<void> {
  const table: ResultTable = {
    caption: `--set ${set}, ${threads} thread${threads > 1 ? "s" : ""}: ${runs} interleaved runs ` +
      `(${pause} ms pause before each), ${new Date().toISOString().slice(0, 16)}Z, ` +
      `load average ${loadAverage()} (other jobs share the cores)`,
    columns: [
      "backend",
      "median ms",
      "img/s",
      "vs first row",
      "p10 ms",
      "p10 vs first row",
      "CPU ms (all threads)",
      "CPU vs first row",
    ],
    rows: contenders.map(([name], j) => {
      const [m, q, c] = [median(times[j]), p10(times[j]), median(cpuTimes[j])];
      return [
        name,
        m.toFixed(1),
        (1000 / m).toFixed(1),
        (m / base).toFixed(2),
        q.toFixed(1),
        (q / base10).toFixed(2),
        c.toFixed(1),
        (c / baseCpu).toFixed(2),
      ];
    }),
  };
  const date = new Date().toISOString().slice(0, 16) + "Z";
  const url = new URL(`./results/${bench}-${date.slice(0, 10)}.json`, import.meta.url);
  const old = await Deno.readTextFile(url).then((t) => JSON.parse(t) as BenchResult).catch(() =>
    undefined
  );
  const key = table.caption.slice(0, table.caption.indexOf(":"));
  const tables = [...(old?.tables ?? []).filter((t) => !t.caption.startsWith(`${key}:`)), table]
    .sort((a, b) => a.caption.localeCompare(b.caption));
  const main = bench === "int8-native";
  const result: BenchResult = {
    bench,
    title: `int8: ours vs native onnxruntime int8 on one QOperator file${
      main ? "" : ` (${bench})`
    }`,
    date,
    commit: await commitLine(),
    machine: machineLine(),
    command:
      `${main ? "deno task bench:int8 (" : "deno run --allow-all "}bench/int8_speed.ts --set ` +
      `qoperator --threads 1|2 --write ${bench}${main ? ")" : ""}`,
    notes: [
      "The tests' QOperator AlexNet (tests/model/_qoperator_models.ts: the zoo's bvlcalexnet-12-int8 " +
      "structure, QLinearConv, QLinearMatMul + QLinearAdd, random weights), run by onnxruntime-node's " +
      "native int8 kernels and by ours (rewritten at load, src/graph/qoperator.ts) in one process, " +
      "interleaved; onnxruntime-web fp32 on the synthetic fp32 AlexNet beside them. Top-1 of ours is " +
      "checked equal to native's first. The machine is a shared 2-core VM: compare within a table. " +
      "CPU ms is the process's CPU time per run (all its threads, median): at 1 thread it is the " +
      "run's time without the waits other jobs add; at 2 threads, what a run costs in total.",
    ],
    tables,
    plots: [latencyPlot(tables, main ? "int8-latency" : `${bench}-latency`)],
  };
  await Deno.writeTextFile(url, JSON.stringify(result, null, 2) + "\n");
}

/** The 1-minute load average (Linux), or "unknown". */
function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
  } catch {
    return "unknown";
  }
}

/** Median latency of each backend at each thread count, one bar per table row. */
function latencyPlot(tables: ResultTable[], name: string): ResultPlot {
  return {
    name,
    title: "AlexNet inference, median per image",
    unit: "ms",
    bars: tables.flatMap((t) => {
      const bits = t.caption.includes("--weight-bits 7") ? ", 7-bit weights" : "";
      const group = (/(\d+ threads?)/.exec(t.caption)?.[1] ?? "") + bits;
      return t.rows.map((r) => ({ label: String(r[0]), group, value: Number(r[1]) }));
    }),
  };
}
