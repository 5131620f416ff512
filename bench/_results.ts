/**
 * The shape every benchmark writes under bench/results/ and `deno task bench:report`
 * renders into BENCHMARKS.md: where and when it ran, the command, tables and plots.
 *
 * @module
 */
import { availableParallelism, cpus, totalmem } from "node:os";

/** One table: a caption, column names, rows of cells as they print. */
export interface ResultTable {
  caption: string;
  columns: string[];
  rows: (string | number)[][];
}

/** A bar chart: one bar per label, grouped by `group` when given. */
export interface ResultPlot {
  /** File name under docs/plots/, without .svg. */
  name: string;
  title: string;
  unit: string;
  bars: { label: string; group?: string; value: number }[];
  /** A goal line drawn across the chart. */
  goal?: { label: string; value: number };
}

/** One run of one benchmark. */
export interface BenchResult {
  /** Which section of BENCHMARKS.md it fills; the newest file of each wins. */
  bench: string;
  title: string;
  date: string;
  commit: string;
  machine: string;
  command: string;
  /** Short paragraphs a reader needs: what is measured, how, what it shows. */
  notes: string[];
  tables: ResultTable[];
  plots?: ResultPlot[];
  /** Markdown carried over from the hand-written BENCHMARKS.md, rendered after the tables. */
  markdown?: string;
}

/** This machine in one line: CPU model, cores, memory, Deno version. */
export function machineLine(): string {
  const model = cpus()[0]?.model?.trim() ?? "unknown CPU";
  const gb = Math.round(totalmem() / 2 ** 30);
  return `${model}, ${availableParallelism()} cores, ${gb} GB; Deno ${Deno.version.deno}`;
}

/** The checkout's commit (short), with "+changes" when the tree is dirty. */
export async function commitLine(): Promise<string> {
  const git = async (...args: string[]) => {
    const out = await new Deno.Command("git", { args, stderr: "null" }).output().catch(() => null);
    return out?.success ? new TextDecoder().decode(out.stdout).trim() : "";
  };
  const sha = await git("rev-parse", "--short", "HEAD");
  const dirty = await git("status", "--porcelain", "--untracked-files=no");
  return sha ? `${sha}${dirty ? "+changes" : ""}` : "unknown";
}

/** Writes `result` to bench/results/<bench>-<date>.json and returns the path. */
export async function writeResult(
  result: Omit<BenchResult, "date" | "commit" | "machine">,
  dir = new URL("./results/", import.meta.url),
): Promise<string> {
  const date = new Date().toISOString().slice(0, 16) + "Z";
  const full: BenchResult = {
    ...result,
    date,
    commit: await commitLine(),
    machine: machineLine(),
  };
  const url = new URL(`${result.bench}-${date.slice(0, 10)}.json`, dir);
  await Deno.writeTextFile(url, JSON.stringify(full, null, 2) + "\n");
  return url.pathname;
}

/** Median of numbers (NaN for none). */
export function median(values: number[]): number {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
