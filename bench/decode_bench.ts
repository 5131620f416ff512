/**
 * Decode speed (#13): encoded photo -> normalized 224x224 tensor, for the current
 * path (imagescript's full decode + our antialiased resize), our fast JPEG decoder at
 * full size, and at the DCT scale chosen for the model (`fitFor`), interleaved in one
 * process; then PIL with draft mode (libjpeg DCT scaling) from /usr/bin/python3 when
 * python3-pil is installed. Each variant's tensor is checked against the reference
 * first (mean and max |diff| in 0..1 pixel units), then timed.
 *
 *   deno task bench:decode [--runs 15] [--baseline OTHER_BUILD.wasm]
 *
 * Inputs are generated into tests/.out/bench_decode/ with ImageMagick (`convert`) from
 * tests/fixtures/rocket.jpg: a 4000x3000 JPEG (q85, 4:2:0, light noise so it is about
 * the size of the 824 KB photo), a 640x480 JPEG and a 4000x3000 PNG (timed with
 * imagescript).
 * The task runs with `--v8-flags=--expose-gc` and each timed call starts after a full
 * collection, so the garbage of a 12-megapixel full decode is not charged to the variant
 * that runs after it.
 * Prints Markdown tables for BENCHMARKS.md ("Decode"): medians and fastest runs.
 */
import { parseArgs } from "node:util";
import { decodeImage, preprocess, type PreprocessSpec } from "../src/image/mod.ts";
import { TORCHVISION_PREPROCESSING } from "../src/model/manifest.ts";
import { useWasmResample } from "../src/image/_resample.ts";
import { decodeJpegFast } from "../src/image/jpeg_fast.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string" }, baseline: { type: "string" } },
});
const runs = Number(values.runs ?? 15);
const OUT = new URL("../tests/.out/bench_decode/", import.meta.url);
const FIXTURE = new URL("../tests/fixtures/rocket.jpg", import.meta.url).pathname;
const spec: PreprocessSpec = TORCHVISION_PREPROCESSING;

async function run(cmd: string, args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(cmd, { args }).output();
  if (code !== 0) throw new Error(`${cmd} failed: ${new TextDecoder().decode(stderr)}`);
  return new TextDecoder().decode(stdout);
}

async function input(name: string, convertArgs: string[]): Promise<string> {
  const path = new URL(name, OUT).pathname;
  try {
    await Deno.stat(path);
  } catch {
    await Deno.mkdir(OUT, { recursive: true });
    await run("convert", [...convertArgs, path]);
  }
  return path;
}

const jpeg12 = await input("photo_12mp.jpg", [
  FIXTURE,
  ...["-resize", "4000x3000!", "-attenuate", "0.1", "+noise", "Gaussian"],
  ...["-sampling-factor", "2x2", "-quality", "85", "-strip"],
]);
const jpeg640 = await input("photo_640.jpg", [
  FIXTURE,
  ...["-resize", "640x480!", "-sampling-factor", "2x2", "-quality", "85", "-strip"],
]);
const png12 = await input("photo_12mp.png", [jpeg12, "-strip"]);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

type Variant = { name: string; fn: (b: Uint8Array) => Promise<Float32Array> };

// `--baseline FILE`: an earlier build of jpeg_decode.wasm (e.g. `git show HEAD~1:wasm/
// decode/jpeg_decode.wasm > base.wasm`), timed beside this one on the 640x480 JPEG at full
// size without the EXIF step: the baseline as jpeg_fast.ts used it before (a fresh
// instance per image, the TypeScript resample), this build through decodeJpegFast, so a
// change is measured in one interleaved run.
const baselineModule = values.baseline
  ? new WebAssembly.Module(await Deno.readFile(values.baseline))
  : undefined;
function bareDecode(module: WebAssembly.Module, b: Uint8Array) {
  const w = new WebAssembly.Instance(module, {}).exports as unknown as {
    memory: WebAssembly.Memory;
    alloc(n: number): number;
    jpeg_decode(p: number, n: number, d: number): number;
  };
  const p = w.alloc(b.length);
  new Uint8Array(w.memory.buffer, p, b.length).set(b);
  const r = w.jpeg_decode(p, b.length, 1);
  if (r <= 0) throw new Error(`Cannot decode the bench image: status ${r}`);
  const [width, height] = new Uint32Array(w.memory.buffer.slice(r, r + 8));
  return { width, height, data: new Uint8Array(w.memory.buffer, r + 8, width * height * 4) };
}
const BARE: Variant[] = baselineModule
  ? [{
    name: `baseline: ${values.baseline}, fresh instance + TypeScript resample`,
    fn: (b) => {
      const was = useWasmResample(false);
      try {
        return Promise.resolve(preprocess(bareDecode(baselineModule, b), spec));
      } finally {
        useWasmResample(was);
      }
    },
  }, {
    name: "this build: decodeJpegFast + preprocess (no EXIF step)",
    fn: async (b) => preprocess(await decodeJpegFast(b, 1), spec),
  }]
  : [];
const VARIANTS: Variant[] = [
  {
    name: "current: imagescript full decode + resize",
    fn: async (b) => preprocess(await decodeImage(b, { decoder: "full" }), spec),
  },
  { name: "ours, full size + resize", fn: async (b) => preprocess(await decodeImage(b), spec) },
  {
    name: "ours, DCT-scaled (fitFor) + resize",
    fn: async (b) => preprocess(await decodeImage(b, { fitFor: spec }), spec),
  },
];

// 0..1 pixel units: undo the normalization.
function pixelDiff(a: Float32Array, b: Float32Array): { mean: number; max: number } {
  const plane = spec.width * spec.height;
  let sum = 0, max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) * spec.std[Math.floor(i / plane)];
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / a.length, max };
}

// PIL runs in one long-lived python3 process, one timed run per line on stdin, so its
// runs interleave with ours round by round (the machine is shared and noisy).
const PIL_SCRIPT = `
import io, sys, time
import numpy as np
from PIL import Image
mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
std = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)
def once(data, draft):
    im = Image.open(io.BytesIO(data))
    if draft:
        im.draft("RGB", (256, 256))  # libjpeg scale 1/2..1/8, result >= 256 on both sides
    im = im.convert("RGB")
    w, h = im.size
    if w <= h: nw, nh = 256, int(256 * h / w)
    else: nw, nh = int(256 * w / h), 256
    im = im.resize((nw, nh), Image.BILINEAR)
    l, t = round((nw - 224) / 2), round((nh - 224) / 2)
    im = im.crop((l, t, l + 224, t + 224))
    x = np.asarray(im, np.float32).transpose(2, 0, 1) / 255
    return (x - mean) / std
files = {}
for line in sys.stdin:
    path, draft = line.split()
    if path not in files: files[path] = open(path, "rb").read()
    t0 = time.perf_counter()
    once(files[path], draft == "1")
    print((time.perf_counter() - t0) * 1000, flush=True)
`;

class Pil {
  #proc: Deno.ChildProcess;
  #lines: AsyncIterator<string>;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  constructor() {
    this.#proc = new Deno.Command("/usr/bin/python3", {
      args: ["-c", PIL_SCRIPT],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#writer = this.#proc.stdin.getWriter();
    let pending = "";
    this.#lines = this.#proc.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(
      new TransformStream<string, string>({
        transform(chunk, ctl) {
          const parts = (pending + chunk).split("\n");
          pending = parts.pop()!;
          for (const p of parts) ctl.enqueue(p);
        },
      }),
    )[Symbol.asyncIterator]();
  }
  /** One timed run inside python (ms), or null when PIL is not there. */
  async run(path: string, draft: boolean): Promise<number | null> {
    try {
      await this.#writer.write(new TextEncoder().encode(`${path} ${draft ? 1 : 0}\n`));
      const { value, done } = await this.#lines.next();
      return done ? null : Number(value);
    } catch {
      return null;
    }
  }
  async close() {
    await this.#writer.close().catch(() => {});
    await this.#proc.status;
  }
}

const fmt = (x: number) => x.toFixed(1);
/** V8's collector, exposed by `--v8-flags=--expose-gc` (the deno task passes it). */
const gc = (globalThis as { gc?: () => void }).gc;
const pil = new Pil();
const hasPil = (await pil.run(jpeg640, true)) !== null;
console.log(
  `Deno ${Deno.version.deno}, V8 ${Deno.version.v8}, ${runs} runs, ` +
    `${navigator.hardwareConcurrency} cores; PIL ${hasPil ? "interleaved" : "not installed"}`,
);
for (
  const [label, path, variants] of [
    ["4000x3000 JPEG", jpeg12, VARIANTS],
    ["640x480 JPEG", jpeg640, [...VARIANTS, ...BARE]],
    ["4000x3000 PNG", png12, [VARIANTS[0]]],
  ] as const
) {
  const bytes = await Deno.readFile(path);
  const reference = await VARIANTS[0].fn(bytes);
  const diffs: { mean: number; max: number }[] = [];
  for (const v of variants) diffs.push(pixelDiff(await v.fn(bytes), reference)); // also warms up
  const pilRuns = hasPil && path.endsWith(".jpg") ? [true, false] : [];
  for (const draft of pilRuns) await pil.run(path, draft); // warm-up
  const times = variants.map(() => [] as number[]);
  const pilTimes = pilRuns.map(() => [] as number[]);
  for (let r = 0; r < runs; r++) {
    for (let i = 0; i < variants.length; i++) {
      // The full decodes leave ~100 MB of garbage; collect it here, not inside the next timing.
      gc?.();
      const t0 = performance.now();
      await variants[i].fn(bytes);
      times[i].push(performance.now() - t0);
    }
    for (let i = 0; i < pilRuns.length; i++) pilTimes[i].push((await pil.run(path, pilRuns[i]))!);
  }
  const base = median(times[0]);
  // The fastest run as well as the median: on a shared machine the minimum is the run
  // that other processes disturbed least, so ratios of minimums move less between runs.
  const row = (name: string, t: number[], diff: string) => {
    const m = median(t);
    const cells = [fmt(m), fmt(Math.min(...t)), fmt(1000 / m), `${(base / m).toFixed(1)}x`];
    console.log(`| ${name} | ${cells.join(" | ")} | ${diff} |`);
  };
  console.log(`\n### ${label} (${(bytes.length / 1024).toFixed(0)} KB) to a 1x3x224x224 tensor\n`);
  console.log(
    "| path | median ms | fastest ms | images/s | vs current | mean / max diff vs current (x255) |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  variants.forEach((v, i) => {
    const d = diffs[i];
    row(v.name, times[i], `${(d.mean * 255).toFixed(2)} / ${(d.max * 255).toFixed(1)}`);
  });
  pilRuns.forEach((draft, i) => {
    const name = draft
      ? "PIL 9.4 draft (libjpeg DCT scaling) + resize"
      : "PIL 9.4 full decode + resize";
    row(name, pilTimes[i], "(Pillow's own resize)");
  });
  if (pilRuns.length) {
    const [ours, draft] = [times[2], pilTimes[0]];
    const medians = (median(ours) / median(draft)).toFixed(2);
    const fastest = (Math.min(...ours) / Math.min(...draft)).toFixed(2);
    console.log(`\nours DCT-scaled / PIL draft: ${medians} (medians), ${fastest} (fastest runs)`);
  }
}
await pil.close();
