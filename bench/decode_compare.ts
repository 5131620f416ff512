/**
 * Our JPEG decoder (wasm/decode) against Debian's jpeg-decoder 0.2.6 crate built to wasm the
 * same way (bench/decode_crate, `Decoder::scale` for DCT-domain downscaling), issue 19:
 *
 * 1. Speed on the decode bench's photos (bench/decode_bench.ts makes them with ImageMagick)
 *    and the JPEG fixtures, at full size and at the scale decodeImage picks for the model:
 *    both outputs are compared first (same size, mean and max |diff| per RGBA byte), then
 *    the two decoders are timed interleaved, one long-lived instance each, RGBA out.
 * 2. The hostile corpus (tests/hardening/corpus_images.ts, full size): each decoder in a
 *    Worker, cut off after --limit seconds; with --baseline, our build from before the
 *    budgets too. Then the whole corpus (PNGs too) through decodeImage at the default
 *    limits: the answer a request gets and how long it took.
 *
 *   bash bench/decode_crate/build.sh     # needs apt-get install librust-jpeg-decoder-dev
 *   git show c222c2d:wasm/decode/jpeg_decode.wasm > /tmp/before.wasm
 *   deno run --allow-all bench/decode_compare.ts [--runs 15] [--limit 30] [--baseline /tmp/before.wasm]
 *     [--speed-only] [--out FILE]
 *
 * Writes bench/results/decode_compare.json and prints a Markdown table.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ClassifierError } from "../src/errors.ts";
import { decodeImage, jpegScaleFor } from "../src/image/decode.ts";
import { readDimensions } from "../src/image/_header.ts";
import { TORCHVISION_PREPROCESSING } from "../src/model/manifest.ts";
import { fullSizeImageCorpus } from "../tests/hardening/corpus_images.ts";
import { type Decoded, type DecoderName, DECODERS, loadDecoder } from "./decode_compare_wasm.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string" },
    limit: { type: "string" },
    baseline: { type: "string" },
    out: { type: "string" },
    "speed-only": { type: "boolean", default: false },
  },
});
const runs = Number(values.runs ?? 15);
const limitS = Number(values.limit ?? 30);
const root = new URL("../", import.meta.url);
const CRATE_WASM = new URL("bench/decode_crate/target/jpeg_decoder_glue.wasm", root).pathname;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function photos(): Promise<string[]> {
  const out = new URL("tests/.out/bench_decode/", root).pathname;
  const made = ["photo_12mp.jpg", "photo_640.jpg"].map((f) => out + f);
  const have = await Promise.all(made.map((p) => Deno.stat(p).then(() => p, () => null)));
  const fixtures = [
    "rocket.jpg",
    "chelsea.jpg",
    "astronaut_progressive.jpg",
    "jpeg_large_420.jpg",
    "jpeg_422_progressive.jpg",
    "camera_gray.jpg",
    "chelsea_cmyk.jpg",
  ].map((f) => new URL(`tests/fixtures/${f}`, root).pathname);
  if (have.some((p) => p === null)) {
    console.error("(run deno task bench:decode once to make the 12 MP and 640x480 photos)");
  }
  return [...have.filter((p): p is string => p !== null), ...fixtures];
}

// Mean and max |diff| over the RGBA bytes of two same-size decodes.
function compare(
  a: Extract<Decoded, { ok: true }>,
  b: Extract<Decoded, { ok: true }>,
): { mean: number; max: number } {
  let sum = 0, max = 0;
  for (let i = 0; i < a.rgba.length; i++) {
    const d = Math.abs(a.rgba[i] - b.rgba[i]);
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.rgba.length, max };
}

interface SpeedRow {
  file: string;
  bytes: number;
  scale: number;
  size: string;
  ours_ms: number;
  crate_ms: number;
  ratio_crate_over_ours: number;
  mean_abs_diff: number;
  max_abs_diff: number;
}

async function speed(): Promise<SpeedRow[]> {
  const ours = await loadDecoder("ours");
  const crate = await loadDecoder("crate", CRATE_WASM);
  const rows: SpeedRow[] = [];
  for (const path of await photos()) {
    const bytes = await Deno.readFile(path);
    const dims = readDimensions(bytes, "jpeg")!;
    const fit = jpegScaleFor(dims.width, dims.height, 1, TORCHVISION_PREPROCESSING);
    for (const scale of new Set([1, fit])) {
      const a = ours.decode(bytes, scale), b = crate.decode(bytes, scale);
      if (!a.ok || !b.ok) {
        console.error(
          `${path} 1/${scale}: ours ${a.ok ? "ok" : a.error}, crate ${b.ok ? "ok" : b.error}`,
        );
        continue;
      }
      if (a.width !== b.width || a.height !== b.height) {
        throw new Error(`${path}: sizes differ, ${a.width}x${a.height} vs ${b.width}x${b.height}`);
      }
      const diff = compare(a, b);
      const t: Record<DecoderName, number[]> = { ours: [], crate: [] };
      for (let r = 0; r < runs; r++) {
        for (const [name, d] of [["ours", ours], ["crate", crate]] as const) {
          const t0 = performance.now();
          d.decode(bytes, scale, false);
          t[name].push(performance.now() - t0);
        }
      }
      const row: SpeedRow = {
        file: path.replace(root.pathname, ""),
        bytes: bytes.length,
        scale,
        size: `${a.width}x${a.height}`,
        ours_ms: +median(t.ours).toFixed(2),
        crate_ms: +median(t.crate).toFixed(2),
        ratio_crate_over_ours: +(median(t.crate) / median(t.ours)).toFixed(2),
        mean_abs_diff: +diff.mean.toFixed(3),
        max_abs_diff: diff.max,
      };
      console.error(JSON.stringify(row));
      rows.push(row);
    }
  }
  return rows;
}

interface HostileRow {
  case: string;
  bytes: number;
  decoder: string;
  ms: number;
  result: string;
}

// One decode in a Worker, terminated after the limit (a decode cannot be interrupted).
function timedInWorker(
  decoder: DecoderName,
  wasm: string | undefined,
  bytes: Uint8Array,
): Promise<{ ms: number; result: string }> {
  const worker = new Worker(new URL("./decode_compare_worker.ts", import.meta.url), {
    type: "module",
  });
  return new Promise((resolve) => {
    const t0 = performance.now();
    const timer = setTimeout(() => {
      worker.terminate();
      resolve({ ms: performance.now() - t0, result: `stopped after ${limitS} s` });
    }, limitS * 1000);
    worker.onmessage = (e: MessageEvent<{ ms: number; result: string }>) => {
      clearTimeout(timer);
      worker.terminate();
      resolve(e.data);
    };
    worker.postMessage({ decoder, wasm, bytes });
  });
}

async function hostile(): Promise<HostileRow[]> {
  const rows: HostileRow[] = [];
  const who: [string, DecoderName, string | undefined][] = [
    ["ours", "ours", undefined],
    ["jpeg-decoder 0.2.6", "crate", CRATE_WASM],
  ];
  if (values.baseline) who.unshift(["ours before budgets", "ours", values.baseline]);
  for (const c of fullSizeImageCorpus().filter((c) => c.bytes[0] === 0xff)) {
    for (const [label, decoder, wasm] of who) {
      const { ms, result } = await timedInWorker(decoder, wasm, c.bytes);
      const row = {
        case: c.name,
        bytes: c.bytes.length,
        decoder: label,
        ms: +ms.toFixed(1),
        result,
      };
      console.error(JSON.stringify(row));
      rows.push(row);
    }
  }
  return rows;
}

interface PipelineRow {
  case: string;
  bytes: number;
  ms: number;
  answer: string;
}

// The whole corpus (PNGs too) through decodeImage at the server's default limits: what a
// request gets, and how long the refusal took.
async function pipeline(): Promise<PipelineRow[]> {
  const rows: PipelineRow[] = [];
  for (const c of fullSizeImageCorpus()) {
    const t0 = performance.now();
    const answer = await decodeImage(c.bytes).then(
      (img) => `decoded ${img.width}x${img.height}`,
      (e) => e instanceof ClassifierError ? `${e.status} ${e.code}: ${e.message}` : `${e}`,
    );
    const row = {
      case: c.name,
      bytes: c.bytes.length,
      ms: +(performance.now() - t0).toFixed(1),
      answer,
    };
    console.error(JSON.stringify(row));
    rows.push(row);
  }
  return rows;
}

const speedOnly = values["speed-only"];
const pipelineRows = speedOnly ? [] : await pipeline();
const speedRows = await speed();
const hostileRows = speedOnly ? [] : await hostile();
const result = {
  date: new Date().toISOString(),
  host:
    `${Deno.build.os} ${Deno.build.arch}, ${navigator.hardwareConcurrency} threads, deno ${Deno.version.deno}`,
  note: "one run; medians of --runs interleaved decodes; the shared machine was loaded",
  runs,
  decoders: DECODERS,
  speed: speedRows,
  hostile: hostileRows,
  pipeline: pipelineRows,
};
const outPath = values.out ?? new URL("bench/results/decode_compare.json", root).pathname;
await Deno.writeTextFile(outPath, JSON.stringify(result, null, 2) + "\n");

console.log(
  "| file | scale | output | ours ms | jpeg-decoder ms | crate/ours | mean, max abs diff |",
);
console.log("|---|---|---|---|---|---|---|");
for (const r of speedRows) {
  console.log(
    `| ${r.file.split("/").pop()} | 1/${r.scale} | ${r.size} | ${r.ours_ms} | ${r.crate_ms} | ` +
      `${r.ratio_crate_over_ours} | ${r.mean_abs_diff}, ${r.max_abs_diff} |`,
  );
}
console.log("\n| hostile case | bytes | decoder | ms | result |\n|---|---|---|---|---|");
for (const r of hostileRows) {
  console.log(`| ${r.case} | ${r.bytes} | ${r.decoder} | ${r.ms} | ${r.result} |`);
}
console.log("\n| case (decodeImage) | bytes | ms | answer |\n|---|---|---|---|");
for (const r of pipelineRows) console.log(`| ${r.case} | ${r.bytes} | ${r.ms} | ${r.answer} |`);
console.error(`wrote ${outPath}`);
