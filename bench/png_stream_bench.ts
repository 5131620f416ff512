/**
 * PNGs at the budgets (#19): imagescript's full decode (what every PNG got before) against the
 * streaming decoder at the scale `fitFor` picks (`src/image/png_stream.ts`), on a 40 MP 8-bit
 * RGBA photo, a just-in-budget 16-bit RGBA photo (4470x4470, 160 MB as stored), the same
 * interlaced, and the corpus's all-zero, Paeth-filtered files of the same sizes
 * (`tests/hardening/corpus_images.ts`), all through `decodeImage` with the server's defaults.
 *
 *   deno run --allow-all bench/png_stream_bench.ts [--runs 5] [--write]
 *
 * Correctness first: for each input both decodes are preprocessed for the model and the
 * tensors compared (mean and max |diff| in 0..1 pixel units). Then each run decodes each input
 * once per variant, each in a fresh process (so RSS is the decode's own), interleaved:
 * wall time, CPU time (user + system) and RSS growth (peak VmHWM minus RSS just before the
 * decode, the file already read). Medians over the runs. The photos are made with ImageMagick
 * (`convert`) from tests/fixtures/rocket.jpg into tests/.out/bench_png/ once.
 */
import { parseArgs } from "node:util";
import { cpuUsage } from "node:process";
import { decodeImage, preprocess } from "../src/image/mod.ts";
import { TORCHVISION_PREPROCESSING } from "../src/model/manifest.ts";
import { png } from "../tests/hardening/corpus_images.ts";
import { median, writeResult } from "./_results.ts";

const spec = TORCHVISION_PREPROCESSING;
const VARIANTS = {
  old: (b: Uint8Array) => decodeImage(b, { decoder: "full" }),
  new: (b: Uint8Array) => decodeImage(b, { fitFor: spec }),
} as const;
type Variant = keyof typeof VARIANTS;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string" },
    write: { type: "boolean" },
    once: { type: "string" },
    variant: { type: "string" },
  },
});

// Child mode: one decode, its cost as JSON on stdout.
if (values.once) {
  const bytes = await Deno.readFile(values.once);
  const hwm = () => Number(Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\s+(\d+)/)![1]);
  const rss0 = Deno.memoryUsage().rss / 1024;
  const cpu0 = cpuUsage();
  const t0 = performance.now();
  const img = await VARIANTS[values.variant as Variant](bytes);
  const wall = performance.now() - t0;
  const cpu = cpuUsage(cpu0);
  console.log(JSON.stringify({
    wall,
    cpu: (cpu.user + cpu.system) / 1000,
    growth: (hwm() - rss0) / 1024,
    size: `${img.width}x${img.height}`,
  }));
  Deno.exit(0);
}

const OUT = new URL("../tests/.out/bench_png/", import.meta.url);
const ROCKET = new URL("../tests/fixtures/rocket.jpg", import.meta.url).pathname;

async function made(name: string, make: (path: string) => Promise<void>): Promise<string> {
  const path = new URL(name, OUT).pathname;
  try {
    await Deno.stat(path);
  } catch {
    await Deno.mkdir(OUT, { recursive: true });
    await make(path);
  }
  return path;
}

async function convert(args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command("convert", { args }).output();
  if (code !== 0) throw new Error(`convert failed: ${new TextDecoder().decode(stderr)}`);
}

const photo = (size: string, depth: number, interlace: boolean) => (path: string) =>
  convert([
    ROCKET,
    ...["-resize", `${size}!`, "-alpha", "set", "-channel", "A", "-evaluate", "set", "100%"],
    ...["+channel", "-define", "png:color-type=6", "-define", `png:bit-depth=${depth}`],
    ...["-depth", `${depth}`, "-interlace", interlace ? "PNG" : "None", path],
  ]);

const zeros = (spec: Parameters<typeof png>[0]) => (path: string) =>
  Deno.writeFile(path, png(spec));

const INPUTS: [string, string][] = [
  [
    "40 MP 8-bit RGBA photo 7740x5160",
    await made("rgba8_7740x5160.png", photo("7740x5160", 8, false)),
  ],
  ["16-bit RGBA photo 4470x4470", await made("rgba16_4470.png", photo("4470x4470", 16, false))],
  [
    "interlaced 16-bit RGBA photo 4470x4470",
    await made("rgba16_4470_adam7.png", photo("4470x4470", 16, true)),
  ],
  [
    "corpus: zeros, Paeth rows, 8-bit RGBA 7740x5160",
    await made(
      "paeth_zeros_rgba8_7740x5160.png",
      zeros({ width: 7740, height: 5160, bitDepth: 8, colorType: 6, filter: 4 }),
    ),
  ],
  [
    "corpus: zeros, Paeth rows, 16-bit RGBA 4470x4470",
    await made(
      "paeth_zeros_rgba16_4470.png",
      zeros({ width: 4470, height: 4470, bitDepth: 16, colorType: 6, filter: 4 }),
    ),
  ],
  [
    "corpus: zeros, Paeth rows, interlaced 16-bit RGBA 4470x4470",
    await made(
      "paeth_zeros_rgba16_4470_adam7.png",
      zeros({ width: 4470, height: 4470, bitDepth: 16, colorType: 6, interlaced: true, filter: 4 }),
    ),
  ],
];

// 0..1 pixel units: undo the normalization.
function tensorDiff(a: Float32Array, b: Float32Array): { mean: number; max: number } {
  const plane = spec.width * spec.height;
  let sum = 0, max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) * spec.std[Math.floor(i / plane)];
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / a.length, max };
}

interface Cost {
  wall: number;
  cpu: number;
  growth: number;
  size: string;
}

async function once(path: string, variant: Variant): Promise<Cost> {
  const args = ["run", "--allow-all", import.meta.filename!, "--once", path, "--variant", variant];
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), { args }).output();
  if (code !== 0) throw new Error(`decode failed: ${new TextDecoder().decode(stderr)}`);
  return JSON.parse(new TextDecoder().decode(stdout));
}

const runs = Number(values.runs ?? 5);
const checks = new Map<string, { mean: number; max: number }>();
for (const [name, path] of INPUTS) {
  const bytes = await Deno.readFile(path);
  const old = preprocess(await VARIANTS.old(bytes), spec);
  const fresh = preprocess(await VARIANTS.new(bytes), spec);
  checks.set(name, tensorDiff(old, fresh));
  console.error(`${name}: tensor |diff| mean ${checks.get(name)!.mean.toFixed(5)}`);
}
const costs = new Map<string, Cost[]>();
for (let r = 0; r < runs; r++) {
  for (const [name, path] of INPUTS) {
    for (const variant of ["old", "new"] as Variant[]) {
      const key = `${name}|${variant}`;
      costs.set(key, [...(costs.get(key) ?? []), await once(path, variant)]);
    }
  }
  console.error(`run ${r + 1}/${runs} done`);
}

const ms = (x: number) => `${Math.round(x)}`;
const rows = INPUTS.flatMap(([name, path]) => {
  const bytes = Deno.statSync(path).size;
  return (["old", "new"] as Variant[]).map((variant) => {
    const c = costs.get(`${name}|${variant}`)!;
    const d = checks.get(name)!;
    return [
      name,
      bytes.toLocaleString("en-US"),
      variant === "old" ? "imagescript, full size" : "png_stream, fitFor",
      c[0].size,
      ms(median(c.map((x) => x.wall))),
      ms(median(c.map((x) => x.cpu))),
      ms(median(c.map((x) => x.growth))),
      variant === "old" ? "reference" : `${d.mean.toFixed(4)} / ${d.max.toFixed(4)}`,
    ];
  });
});
const table = {
  caption: `decodeImage, one decode per fresh process, medians of ${runs} interleaved runs`,
  columns: [
    "input",
    "bytes",
    "decoder",
    "output",
    "wall ms",
    "CPU ms",
    "RSS growth MiB",
    "tensor |diff| mean / max",
  ],
  rows,
};
console.log(table.columns.join(" | "));
for (const row of rows) console.log(row.join(" | "));
if (values.write) {
  const path = await writeResult({
    bench: "png-stream",
    title: "PNG decoding at the budgets: imagescript vs the streaming decoder",
    command: `deno run --allow-all bench/png_stream_bench.ts --runs ${runs} --write`,
    notes: [
      "Each decode runs in a fresh process: wall and CPU time (user + system) of decodeImage, " +
      "and RSS growth as peak VmHWM minus RSS just before the decode (the file already read).",
      "`old` is imagescript's full-size decode (every PNG before); `new` is decodeImage with " +
      "`fitFor` (the model's preprocessing), which picks a 1/8 box mean for all these sizes.",
      "Tensor |diff|: both decodes preprocessed to 224x224, in 0..1 pixel units.",
    ],
    tables: [table],
  });
  console.error(`wrote ${path}`);
}
