/**
 * A download progress bar for stderr: redrawn in place (`\r`) at most ten
 * times a second on a terminal; otherwise (logs, CI, pipes) one line when a
 * source starts and one per 10 %.
 *
 * @module
 */
import { type DownloadProgress, formatBytes } from "./download.ts";

/** Options of {@linkcode progressBar}. */
export interface ProgressBarOptions {
  /** What is downloading, e.g. "bvlcalexnet-12-int8.onnx". */
  label: string;
  /** Where text goes (default: stderr). */
  write?: (text: string) => void;
  /** Redraw in place (default: whether stderr is a terminal). */
  tty?: boolean;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** A progress display fed by {@linkcode DownloadProgress} events. */
export interface ProgressBar {
  /** Shows the latest state (throttled). */
  update(p: DownloadProgress): void;
  /** Ends the display (a newline after the bar on a terminal). */
  done(): void;
}

const WIDTH = 30;

function stderrWriter(): (text: string) => void {
  const encoder = new TextEncoder();
  return (text) => {
    const bytes = encoder.encode(text);
    let n = 0;
    while (n < bytes.length) n += Deno.stderr.writeSync(bytes.subarray(n));
  };
}

/**
 * Creates a progress display.
 *
 * @example
 * ```ts
 * const bar = progressBar({ label: "bvlcalexnet-12-int8.onnx" });
 * await download(sources, dest, { pin, onProgress: bar.update });
 * bar.done();
 * ```
 */
export function progressBar(options: ProgressBarOptions): ProgressBar {
  const write = options.write ?? stderrWriter();
  const tty = options.tty ?? Deno.stderr.isTerminal();
  const now = options.now ?? (() => performance.now());
  let source = "";
  let startedAt = 0;
  let startBytes = 0;
  let lastDraw = -Infinity;
  let lastDecile = -1;
  let drawn = false;
  let last: DownloadProgress | undefined;

  const rate = (p: DownloadProgress) => {
    const s = (now() - startedAt) / 1000;
    return s > 0.5 ? (p.received - startBytes) / s : 0;
  };

  const line = (p: DownloadProgress) => {
    const f = p.total > 0 ? Math.min(1, p.received / p.total) : 0;
    const filled = Math.round(f * WIDTH);
    const r = rate(p);
    const eta = r > 0 ? ` ${Math.ceil((p.total - p.received) / r)} s left` : "";
    return `${options.label} [${"#".repeat(filled)}${"-".repeat(WIDTH - filled)}] ` +
      `${(f * 100).toFixed(0).padStart(3)}% ${formatBytes(p.received)} / ` +
      `${formatBytes(p.total)}${r > 0 ? ` ${formatBytes(r)}/s` : ""}${eta}`;
  };

  const update = (p: DownloadProgress) => {
    last = p;
    if (p.source !== source || p.received === p.resumedFrom) {
      if (drawn) write("\n");
      drawn = false;
      source = p.source;
      startedAt = now();
      startBytes = p.received;
      lastDecile = Math.floor((p.received / p.total) * 10);
      write(
        `Fetching ${options.label} (${formatBytes(p.total)}) from ${p.source}` +
          (p.resumedFrom > 0 ? `, resuming at ${formatBytes(p.resumedFrom)}` : "") + "\n",
      );
    }
    if (tty) {
      const t = now();
      if (t - lastDraw < 100 && p.received < p.total) return;
      lastDraw = t;
      write(`\r${line(p)}\x1b[K`);
      drawn = true;
      return;
    }
    const decile = Math.floor((p.received / p.total) * 10);
    if (decile > lastDecile) {
      lastDecile = decile;
      write(`${line(p)}\n`);
    }
  };

  return {
    update,
    done() {
      if (tty && drawn && last) write(`\r${line(last)}\x1b[K\n`);
      drawn = false;
    },
  };
}
