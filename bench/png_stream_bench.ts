/**
 * PNGs at the budgets (#19): imagescript's full decode (what every PNG got before) against the
 * streaming decoder at the scale `fitFor` picks (`src/image/png_stream.ts`), on a 40 MP 8-bit
 * RGBA photo, a just-in-budget 16-bit RGBA photo (4470x4470, 160 MB as stored), the same
 * interlaced, and the corpus's all-zero, Paeth-filtered files of the same sizes
 * (`tests/hardening/corpus_images.ts`), all through `decodeImage` with the server's defaults.
 *
 *   deno run --allow-all bench/png_stream_bench.ts [--runs 5] [--write]
 *
 * A third variant, `full`, is decodeImage without `fitFor`: the streaming decoder at scale 1
 * (its pixels checked equal to imagescript's). A second table times full-size decodes of RGB
 * photos from 400x300 to 4000x3000 in this process, interleaved.
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
import { decodePng } from "../src/image/_codecs.ts";
import { decodePngStream } from "../src/image/png_stream.ts";
import { TORCHVISION_PREPROCESSING } from "../src/model/manifest.ts";
import { png } from "../tests/hardening/corpus_images.ts";
import { median, writeResult } from "./_results.ts";

const spec = TORCHVISION_PREPROCESSING;
const VARIANTS = {
  old: (b: Uint8Array) => decodeImage(b, { decoder: "full" }),
  new: (b: Uint8Array) => decodeImage(b, { fitFor: spec }),
  full: (b: Uint8Array) => decodeImage(b),
} as const;
const LABELS: Record<Variant, string> = {
  old: "imagescript, full size",
  new: "png_stream, fitFor",
  full: "png_stream, full size",
};
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

const photoRgb = (size: string) => (path: string) =>
  convert([ROCKET, "-resize", `${size}!`, "-define", "png:color-type=2", path]);

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
  const [a, b] = [await VARIANTS.old(bytes), await VARIANTS.full(bytes)];
  if (a.data.length !== b.data.length || a.data.some((v, i) => v !== b.data[i])) {
    throw new Error(`${name}: the streaming decoder's full-size pixels differ from imagescript's`);
  }
  console.error(`${name}: tensor |diff| mean ${checks.get(name)!.mean.toFixed(5)}`);
}
const costs = new Map<string, Cost[]>();
for (let r = 0; r < runs; r++) {
  for (const [name, path] of INPUTS) {
    for (const variant of ["old", "new", "full"] as Variant[]) {
      const key = `${name}|${variant}`;
      costs.set(key, [...(costs.get(key) ?? []), await once(path, variant)]);
    }
  }
  console.error(`run ${r + 1}/${runs} done`);
}

// Full-size speed from small to large, in this process: imagescript and the streaming decoder
// (decodePngStream at scale 1, what decodeImage uses from PNG_STREAM_MIN_PIXELS), interleaved.
const SPEED_INPUTS: [string, string][] = [
  ["RGB 400x300 (coffee.png)", new URL("../tests/fixtures/coffee.png", import.meta.url).pathname],
  ["RGB 800x600", await made("rgb_800x600.png", photoRgb("800x600"))],
  ["RGB 1600x1200", await made("rgb_1600x1200.png", photoRgb("1600x1200"))],
  ["RGB 4000x3000", await made("rgb_4000x3000.png", photoRgb("4000x3000"))],
];
const speedRows: (string | number)[][] = [];
for (const [name, path] of SPEED_INPUTS) {
  const bytes = await Deno.readFile(path);
  const reps = bytes.length > 1e6 ? 2 * runs + 1 : 41;
  const times = { imagescript: [] as number[], stream: [] as number[] };
  for (let r = 0; r < reps; r++) {
    let t = performance.now();
    await decodePng(bytes);
    times.imagescript.push(performance.now() - t);
    t = performance.now();
    await decodePngStream(bytes);
    times.stream.push(performance.now() - t);
  }
  const [a, b] = [median(times.imagescript), median(times.stream)];
  speedRows.push([name, reps, a.toFixed(1), b.toFixed(1), (a / b).toFixed(2)]);
}
const speed = {
  caption: "Full size, one process, medians of interleaved decodes (ms)",
  columns: ["input", "decodes each", "imagescript", "png_stream", "speed-up"],
  rows: speedRows,
};
console.log(speed.columns.join(" | "));
for (const row of speedRows) console.log(row.join(" | "));

const ms = (x: number) => `${Math.round(x)}`;
const rows = INPUTS.flatMap(([name, path]) => {
  const bytes = Deno.statSync(path).size;
  return (["old", "new", "full"] as Variant[]).map((variant) => {
    const c = costs.get(`${name}|${variant}`)!;
    const d = checks.get(name)!;
    return [
      name,
      bytes.toLocaleString("en-US"),
      LABELS[variant],
      c[0].size,
      ms(median(c.map((x) => x.wall))),
      ms(median(c.map((x) => x.cpu))),
      ms(median(c.map((x) => x.growth))),
      variant === "new"
        ? `${d.mean.toFixed(4)} / ${d.max.toFixed(4)}`
        : variant === "old"
        ? "reference"
        : "identical pixels",
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
      "Tensor |diff|: both decodes preprocessed to 224x224, in 0..1 pixel units. `full` is " +
      "decodeImage without `fitFor` (the streaming decoder at scale 1 from 1 MP), checked " +
      "equal to imagescript's pixels first.",
      "The second table times full-size decodes in one process, interleaved, from small to large.",
    ],
    tables: [table, speed],
  });
  console.error(`wrote ${path}`);
}
