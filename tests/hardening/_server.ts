/**
 * The real server (main.ts) in its own process on a loopback port, for the
 * fuzzer, the soak test and the shutdown and main.ts tests: its resident memory is read
 * from /proc (current and peak), its output kept, its exit code returned.
 *
 * @module
 */

import { freePort, processMemory, readLines } from "../_process.ts";

const ROOT = new URL("../../", import.meta.url);

/** A running server process. */
export interface ServerProcess {
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  pid: number;
  /** Resident memory now and at its peak (VmRSS, VmHWM), in bytes. */
  memory(): Promise<{ rss: number; peak: number }>;
  /** Whether the process is still running. */
  alive(): boolean;
  /** Every line it has written so far (stdout and stderr). */
  lines(): string[];
  /** Sends `signal` and waits for the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
}

/** Options of {@linkcode startServer}. */
export interface StartOptions {
  /** Extra flags for main.ts (the port, host and --offline are set here). */
  args?: string[];
  /** How long to wait for /readyz (default 120 s: the synthetic AlexNet takes seconds). */
  readyTimeoutMs?: number;
  /** What to wait for: /readyz 200 (default), or /healthz 200 (listening, model or not). */
  waitFor?: "readyz" | "healthz";
  /** Environment variables besides NO_COLOR=1. */
  env?: Record<string, string>;
  /** Flags for `deno run` itself, before main.ts (e.g. `--preload`). */
  denoArgs?: string[];
}

/** The log's JSON lines that parse, for reading fields (`msg`, `in_flight`). */
export function logEntries(lines: string[]): Record<string, unknown>[] {
  return lines.flatMap((l) => {
    try {
      const entry = JSON.parse(l);
      return entry && typeof entry === "object" ? [entry] : [];
    } catch {
      return [];
    }
  });
}

/**
 * Waits until `found` holds for the lines a server has written, or it exits or
 * `limitMs` passes (a bound for a hung test, not a timing check); the lines.
 */
export async function waitForLog(
  server: ServerProcess,
  found: (lines: string[]) => boolean,
  limitMs = 60_000,
): Promise<string[]> {
  const deadline = Date.now() + limitMs;
  while (!found(server.lines())) {
    if (!server.alive() || Date.now() > deadline) {
      throw new Error(`The log never showed what was awaited:\n${server.lines().join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return server.lines();
}

/**
 * Starts main.ts on 127.0.0.1 and waits until /readyz answers 200.
 *
 * @example
 * ```ts
 * const server = await startServer({ args: ["--model", tiny.model, "--max-queue", "8"] });
 * await fetch(`${server.url}/healthz`);
 * assert.equal(await server.stop(), 0);
 * ```
 */
export async function startServer(options: StartOptions = {}): Promise<ServerProcess> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      ...(options.denoArgs ?? []),
      "--config",
      new URL("deno.json", ROOT).pathname,
      new URL("main.ts", ROOT).pathname,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--offline",
      ...(options.args ?? []),
    ],
    cwd: ROOT.pathname,
    env: { NO_COLOR: "1", ...options.env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const drained = Promise.all([readLines(child.stdout, lines), readLines(child.stderr, lines)]);
  let exited = false;
  const status = child.status.then(async (s) => {
    exited = true;
    await drained;
    return s.code;
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 120_000);
  for (;;) {
    if (exited) throw new Error(`The server exited at start-up:\n${lines.join("\n")}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`The server was not ready in time:\n${lines.join("\n")}`);
    }
    const ready = await fetch(`${url}/${options.waitFor ?? "readyz"}`).then(async (r) => {
      await r.body?.cancel();
      return r.status === 200;
    }, () => false);
    if (ready) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    pid: child.pid,
    memory: () => processMemory(child.pid),
    alive: () => !exited,
    lines: () => lines,
    async stop(signal: Deno.Signal = "SIGTERM") {
      if (!exited) child.kill(signal);
      return await status;
    },
  };
}
