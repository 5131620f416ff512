/**
 * The hostile image corpus at full size against the real server (`deno task fuzz --images`):
 * each case of {@linkcode fullSizeImageCorpus} is POSTed to /predict while a normal photo is
 * classified beside it, and the run fails if a case is not answered with a 4xx or a 200
 * within --case-limit seconds, if the photo beside it takes more than twice its idle
 * latency (plus 100 ms of noise), or if the server's peak RSS grows more than --rss-growth
 * MiB over idle.
 *
 * @module
 */
import { writeTinyModel } from "../_helpers.ts";
import { startServer } from "./_server.ts";
import { fullSizeImageCorpus } from "./corpus_images.ts";

const MiB = 1024 * 1024;

/** One case's answer. */
export interface CorpusAnswer {
  case: string;
  bytes: number;
  status: number;
  code?: string;
  message?: string;
  ms: number;
  /** The normal photo's latency while this case was being answered. */
  besideMs: number;
}

/** Limits of {@linkcode runImageCorpus}. */
export interface ImageCorpusLimits {
  /** Most seconds a case may take (default 1). */
  caseLimitS?: number;
  /** Most MiB the server's peak RSS may grow over idle (default 150). */
  rssGrowthMiB?: number;
  /** Serve this ONNX file (its manifest beside it) instead of the tiny test model. */
  model?: string;
}

async function post(url: string, bytes: Uint8Array): Promise<{ status: number; body: string }> {
  const res = await fetch(`${url}/predict`, {
    method: "POST",
    headers: { "content-type": "application/octet-stream" },
    body: bytes as BodyInit,
  });
  return { status: res.status, body: await res.text() };
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const out = await f();
  return [out, performance.now() - t0];
}

/**
 * Starts a server on the tiny model (or `limits.model`) with default limits, sends every
 * full-size case, and returns the answers and what broke.
 */
export async function runImageCorpus(
  limits: ImageCorpusLimits = {},
): Promise<
  {
    answers: CorpusAnswer[];
    failures: string[];
    idleMs: number;
    rssIdleMiB: number;
    rssPeakMiB: number;
  }
> {
  const { caseLimitS = 1, rssGrowthMiB = 150 } = limits;
  const tiny = await writeTinyModel(64, 48);
  const server = await startServer({
    args: ["--model", limits.model ?? tiny.model, "--log-level", "warn"],
  });
  const photo = await Deno.readFile(new URL("../fixtures/chelsea.jpg", import.meta.url));
  const failures: string[] = [];
  const answers: CorpusAnswer[] = [];
  try {
    await post(server.url, photo); // warm-up
    const idleRuns: number[] = [];
    for (let i = 0; i < 5; i++) idleRuns.push((await timed(() => post(server.url, photo)))[1]);
    const idle = idleRuns.sort((a, b) => a - b)[2]; // the median of five, one at a time
    const rssIdle = (await server.memory()).rss;
    for (const c of fullSizeImageCorpus()) {
      const attack = timed(() => post(server.url, c.bytes));
      const beside = timed(() => post(server.url, photo));
      const [[answer, ms], [, besideMs]] = await Promise.all([attack, beside]);
      const error = answer.status === 200 ? undefined : JSON.parse(answer.body).error;
      answers.push({
        case: c.name,
        bytes: c.bytes.length,
        status: answer.status,
        code: error?.code,
        message: error?.message,
        ms: Math.round(ms),
        besideMs: Math.round(besideMs),
      });
      if (answer.status !== 200 && (answer.status < 400 || answer.status >= 500)) {
        failures.push(`${c.name}: status ${answer.status}`);
      }
      if (ms > caseLimitS * 1000) failures.push(`${c.name}: ${Math.round(ms)} ms`);
      if (besideMs > 2 * idle + 100) {
        failures.push(
          `${c.name}: the photo beside it took ${Math.round(besideMs)} ms (idle ${
            Math.round(idle)
          })`,
        );
      }
    }
    const { peak } = await server.memory();
    if (peak - rssIdle > rssGrowthMiB * MiB) {
      failures.push(
        `peak RSS ${Math.round(peak / MiB)} MiB, idle ${Math.round(rssIdle / MiB)} MiB`,
      );
    }
    return {
      answers,
      failures,
      idleMs: Math.round(idle),
      rssIdleMiB: Math.round(rssIdle / MiB),
      rssPeakMiB: Math.round(peak / MiB),
    };
  } finally {
    await server.stop("SIGTERM");
    await Deno.remove(tiny.dir, { recursive: true });
  }
}
