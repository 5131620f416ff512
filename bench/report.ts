/**
 * `deno task bench:report`: renders BENCHMARKS.md and its plots (docs/plots/*.svg) from
 * bench/results/*.json, the newest result of each benchmark only; older results stay in
 * the JSON files as the history. `--check` fails when the committed files differ from
 * what the results render (CI-friendly, no timing involved).
 *
 *   deno task bench:report [--check]
 *
 * @module
 */
import { formatMarkdown } from "../tools/fmt_markdown.ts";
import type { BenchResult, ResultPlot, ResultTable } from "./_results.ts";

const ROOT = new URL("..", import.meta.url);
const RESULTS = new URL("bench/results/", ROOT);
const PLOTS = new URL("docs/plots/", ROOT);

/** Section order; a benchmark not listed comes after these, by name. */
const ORDER = [
  "launch",
  "int8-native",
  "int8",
  "int8-agreement",
  "kernels",
  "serving",
  "load",
  "decode",
  "jpeg-decoders",
  "hostile",
  "hostile-images",
  "hostile-http",
  "edge",
  "deploy",
  "qoperator",
  "webgpu",
  "lrn",
  "overhead",
  "hardening",
];

/** Every result file that names its benchmark (older raw files without `bench` are skipped). */
export async function readResults(dir: URL = RESULTS): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".json")) continue;
    const data = JSON.parse(await Deno.readTextFile(new URL(entry.name, dir)));
    if (typeof data?.bench === "string") out.push(data as BenchResult);
  }
  return out;
}

/** The newest result of each benchmark, in section order. */
export function currentResults(all: BenchResult[]): BenchResult[] {
  const newest = new Map<string, BenchResult>();
  for (const r of all) {
    const seen = newest.get(r.bench);
    if (!seen || r.date > seen.date) newest.set(r.bench, r);
  }
  const rank = (b: string) => (ORDER.indexOf(b) + ORDER.length + 1) % (ORDER.length + 1);
  return [...newest.values()].sort((a, b) =>
    rank(a.bench) - rank(b.bench) || a.bench.localeCompare(b.bench)
  );
}

function renderTable(t: ResultTable): string {
  const cell = (v: string | number) => String(v).replaceAll("|", "\\|");
  const lines = [
    `| ${t.columns.map(cell).join(" | ")} |`,
    `| ${t.columns.map(() => "---").join(" | ")} |`,
    ...t.rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
  ];
  return (t.caption ? `${t.caption}\n\n` : "") + lines.join("\n");
}

function renderSection(r: BenchResult, history: number): string {
  const parts = [
    `## ${r.title}`,
    `${r.date.replace("T", " ").replace("Z", " UTC")} · commit ${r.commit} · ${r.machine}  \n` +
    `Command: \`${r.command}\`` +
    (history ? ` · ${history} older result${history > 1 ? "s" : ""} in bench/results/` : ""),
    ...r.notes,
    ...(r.plots ?? []).map((p) => `![${p.title}](docs/plots/${p.name}.svg)`),
    ...r.tables.map(renderTable),
  ];
  if (r.markdown) parts.push(r.markdown.trim());
  return parts.join("\n\n");
}

/** BENCHMARKS.md's text (before `deno fmt`). */
export function renderReport(all: BenchResult[]): string {
  const current = currentResults(all);
  const count = (b: string) => all.filter((r) => r.bench === b).length - 1;
  const head = [
    "# Benchmarks",
    "Rendered by `deno task bench:report` from bench/results/*.json: the newest result of each " +
    "benchmark, with the machine, date, commit and command that made it. Do not edit by hand: " +
    "rerun the benchmark (it writes a new JSON file), then the report. Older results stay in " +
    "the JSON files. The machine is a shared 2-core VM: compare numbers within one table, where " +
    "they were measured in one run; absolute times move by ±20% between runs.",
    current.map((r) => `- [${r.title}](#${anchor(r.title)})`).join("\n"),
  ];
  return [...head, ...current.map((r) => renderSection(r, count(r.bench)))].join("\n\n") + "\n";
}

/** GitHub's heading anchor. */
function anchor(title: string): string {
  return title.toLowerCase().replace(/[^\p{L}\p{N} -]/gu, "").replaceAll(" ", "-");
}

const esc = (s: string) =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/** A horizontal bar chart, one bar per label, with an optional dashed goal line. */
export function renderPlot(p: ResultPlot): string {
  const label = (b: ResultPlot["bars"][number]) => b.group ? `${b.group} · ${b.label}` : b.label;
  // About 7 px a character at 13 px sans-serif: the longest label decides the margin.
  const left = 16 + 7 * Math.max(...p.bars.map((b) => label(b).length));
  const rowH = 26, plotW = 420, width = left + plotW + 90, top = 40;
  const max = Math.max(...p.bars.map((b) => b.value), p.goal?.value ?? 0) * 1.05 || 1;
  const x = (v: number) => left + (v / max) * plotW;
  const height = top + p.bars.length * rowH + 30;
  const bars = p.bars.map((b, i) => {
    const y = top + i * rowH;
    return `<text x="${left - 8}" y="${y + 17}" text-anchor="end">${esc(label(b))}</text>` +
      `<rect x="${left}" y="${y + 4}" width="${(x(b.value) - left).toFixed(1)}" height="${
        rowH - 8
      }" fill="#4878a8"/>` +
      `<text x="${(x(b.value) + 6).toFixed(1)}" y="${y + 17}">${b.value} ${esc(p.unit)}</text>`;
  });
  const goal = p.goal
    ? `<line x1="${x(p.goal.value).toFixed(1)}" x2="${x(p.goal.value).toFixed(1)}" y1="${
      top - 6
    }" y2="${height - 24}" stroke="#c0392b" stroke-dasharray="5,4"/>` +
      `<text x="${x(p.goal.value).toFixed(1)}" y="${height - 8}" text-anchor="middle" ` +
      `fill="#c0392b">${esc(p.goal.label)}: ${p.goal.value} ${esc(p.unit)}</text>`
    : "";
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `font-family="sans-serif" font-size="13"><rect width="100%" height="100%" fill="white"/>` +
    `<text x="${left}" y="22" font-size="15" font-weight="bold">${esc(p.title)} (${
      esc(p.unit)
    })</text>${bars.join("")}${goal}</svg>\n`;
}

/** Every file the report writes, path -> text. */
export async function renderAll(all: BenchResult[]): Promise<Map<URL, string>> {
  const files = new Map<URL, string>();
  files.set(new URL("BENCHMARKS.md", ROOT), await formatMarkdown(renderReport(all), ROOT));
  for (const r of currentResults(all)) {
    for (const p of r.plots ?? []) files.set(new URL(`${p.name}.svg`, PLOTS), renderPlot(p));
  }
  return files;
}

if (import.meta.main) {
  const check = Deno.args.includes("--check");
  const files = await renderAll(await readResults());
  let stale = 0;
  for (const [url, text] of files) {
    const now = await Deno.readTextFile(url).catch(() => undefined);
    if (now === text) continue;
    if (check) {
      console.error(`${url.pathname} differs from what bench/results/ renders`);
      stale++;
    } else {
      await Deno.mkdir(new URL(".", url), { recursive: true });
      await Deno.writeTextFile(url, text);
      console.log(`Wrote ${url.pathname}`);
    }
  }
  if (stale) {
    console.error("Run `deno task bench:report` and commit the result.");
    Deno.exit(1);
  }
  if (check) console.log(`BENCHMARKS.md and ${files.size - 1} plots match bench/results/.`);
}
