/**
 * Where the server runs and what that platform allows: edge profiles (Deno
 * Deploy, Netlify Edge Functions, Supabase Edge Functions) with the budgets
 * their documentation publishes, whether a Worker can be started (no Worker:
 * one inference thread), and whether a model fits the memory cap before it is
 * loaded (an isolate over its cap is killed; refusing with a message is kinder).
 *
 * Detection, first match wins: `EDGE_PROFILE` (or `--edge-profile`), then
 * the platform's own marks: a `Netlify` global (Netlify Edge Functions), an
 * `EdgeRuntime` global or `SUPABASE_URL` (Supabase Edge Functions),
 * `DENO_DEPLOY=true` or `DENO_DEPLOYMENT_ID` (Deno Deploy). Elsewhere: `local`, no caps.
 *
 * @module
 */
import process from "node:process";

/** The edge platforms with a profile. */
export const EDGE_PROFILES = ["deno-deploy", "netlify", "supabase"] as const;

/** One of {@linkcode EDGE_PROFILES}. */
export type EdgeProfileName = typeof EDGE_PROFILES[number];

/** A platform's published budgets (see docs/deploy.md). */
export interface EdgeProfile {
  name: EdgeProfileName | "local";
  /** Memory an isolate may use, in bytes; absent: no cap. */
  memoryBytes?: number;
  /** CPU time a request may use, in milliseconds; absent: no budget. */
  cpuMsPerRequest?: number;
  /** Largest deployed code (after the platform's compression or bundling), in bytes. */
  codeBytes?: number;
  /**
   * Whether the platform offers the Worker API (onnxruntime-web's threads need it); `"probe"`
   * where its docs do not say: the server starts one at start-up and falls back to one thread.
   */
  workers: boolean | "probe";
  /** Longest the event loop may be blocked, in milliseconds; absent: no documented limit. */
  maxBlockMs?: number;
  /**
   * Largest image accepted (width x height), below `--max-pixels`' 40 MP default: decoding a
   * photo holds tens of bytes per pixel and blocks the event loop. With the int8 model in
   * `edge:sim` (deno-deploy, one thread, two runs on 2026-11-28) a 12 MP JPEG photo peaked at
   * 668-682 MB RSS and blocked for 0.56-1.03 s, its 4 MP PNG at 490-541 MB, both near or over
   * 512 MB; at 2 MP peaks were 356-372 MB and blocks 0.3 s at most. 2.1 MP lets 1920x1080 through.
   */
  maxPixels?: number;
}

const MB = 1024 * 1024;

/**
 * The profiles, from each platform's documentation as read on 2026-12-07. Where
 * pages disagree the profile takes the safe (smaller) figure; `EDGE_MEMORY_MB`
 * overrides the memory cap (docs/deploy.md). A budget a platform does not
 * document is left out: no per-request CPU budget and no event-loop limit on
 * Deno Deploy (its 50/200 ms and "no block over 1 s" were Deploy Classic's).
 */
export const PROFILES: Readonly<Record<EdgeProfileName, EdgeProfile>> = {
  // https://docs.deno.com/deploy/pricing_and_limits (read 2026-12-07): "maximum memory
  // allocation of 512MB", deployments up to 1 GB of source and static files, access governed by
  // the acceptable use policy. Issue 22 reports other Deno Deploy pages (denoland/docs, 2026-08)
  // giving 768 MB by default and up to 4 GB: 512 MB is the safe figure. No per-request CPU limit
  // is documented; the Deno CLI runs with all permissions, so Workers exist.
  "deno-deploy": {
    name: "deno-deploy",
    memoryBytes: 512 * MB,
    codeBytes: 1024 * MB,
    workers: true,
    maxPixels: 2_100_000,
  },
  // https://docs.netlify.com/edge-functions/limits/ (read 2026-12-07): 20 MB code after
  // compression, 512 MB memory per set of deployed edge functions (ours is one function),
  // 50 ms CPU per request. Workers are not documented: probed at start-up.
  netlify: {
    name: "netlify",
    memoryBytes: 512 * MB,
    cpuMsPerRequest: 50,
    codeBytes: 20 * MB,
    workers: "probe",
    maxPixels: 2_100_000,
  },
  // https://supabase.com/docs/guides/functions/limits (read 2026-12-07): 256 MB memory, 2 s CPU
  // per request, 20 MB per function after bundling with the CLI, no Web Worker API.
  supabase: {
    name: "supabase",
    memoryBytes: 256 * MB,
    cpuMsPerRequest: 2000,
    codeBytes: 20 * MB,
    workers: false,
    maxPixels: 2_100_000,
  },
};

/**
 * A profile with the memory cap of `EDGE_MEMORY_MB` (a positive number of MB), for a plan
 * or platform page that gives more than the profile's safe figure; else the profile itself.
 *
 * @throws {RangeError} When `EDGE_MEMORY_MB` is not a positive number.
 *
 * @example
 * ```ts
 * withMemoryOverride(PROFILES["deno-deploy"], () => "768").memoryBytes; // 805306368
 * ```
 */
export function withMemoryOverride(
  profile: EdgeProfile,
  env: (key: string) => string | undefined = defaultEnv,
): EdgeProfile {
  const text = env("EDGE_MEMORY_MB")?.trim();
  if (!text || profile.name === "local") return profile;
  const mb = Number(text);
  if (!(mb > 0) || !Number.isFinite(mb)) {
    throw new RangeError(`Cannot use EDGE_MEMORY_MB=${text}: expected a positive number of MB`);
  }
  return { ...profile, memoryBytes: Math.round(mb * MB) };
}

/**
 * Whether a Worker can start and answer here, within `timeoutMs`: for a platform whose docs do
 * not say (profile `workers: "probe"`). A module Worker from a data: URL echoes one message.
 *
 * @example
 * ```ts
 * const workers = await probeWorkers(); // false where the Worker API is missing or refused
 * ```
 */
export async function probeWorkers(timeoutMs = 2000): Promise<boolean> {
  const Ctor = (globalThis as { Worker?: typeof Worker }).Worker;
  if (typeof Ctor !== "function" || !WORKER_AT_START) return false;
  let worker: Worker | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const source = "self.onmessage = (e) => self.postMessage(e.data);";
    worker = new Ctor(`data:text/javascript,${encodeURIComponent(source)}`, { type: "module" });
    const answered = new Promise<boolean>((resolve) => {
      worker!.onmessage = (e) => resolve(e.data === "probe");
      worker!.onerror = (e) => {
        e.preventDefault();
        resolve(false);
      };
    });
    worker.postMessage("probe");
    const late = new Promise<boolean>((r) => timer = setTimeout(() => r(false), timeoutMs));
    return await Promise.race([answered, late]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    worker?.terminate();
  }
}

/** No platform: a self-hosted server. */
export const LOCAL_PROFILE: EdgeProfile = { name: "local", workers: true };

/**
 * Whether this runtime has a Worker constructor, read when this module is
 * first evaluated: onnxruntime-web's glue sets `globalThis.Worker` to Node's
 * `worker_threads.Worker` when it loads under Deno, so a later look would lie.
 */
const WORKER_AT_START = typeof (globalThis as { Worker?: unknown }).Worker === "function";

/** What {@linkcode detectPlatform} found. */
export interface Platform {
  profile: EdgeProfile;
  /** Why this profile: "EDGE_PROFILE", "Netlify global", ... */
  reason: string;
  /** Whether a Worker can be started here (the runtime has one and the profile allows it). */
  workers: boolean;
  /** Intra-op threads to use: 1 without workers, else undefined (the backend's default). */
  threads?: number;
}

/** Where {@linkcode detectPlatform} looks; tests pass their own. */
export interface DetectOptions {
  /** Environment lookup (default Deno.env.get, or nothing without --allow-env). */
  env?: (key: string) => string | undefined;
  /** Globals to look at (default globalThis). */
  globals?: Record<string, unknown>;
  /** Whether the runtime has a Worker constructor (default: as at start-up). */
  hasWorker?: boolean;
}

function defaultEnv(key: string): string | undefined {
  try {
    return Deno.env.get(key);
  } catch {
    return undefined; // no --allow-env
  }
}

/**
 * The platform this process runs on.
 *
 * @throws {RangeError} When `EDGE_PROFILE` names no profile.
 *
 * @example
 * ```ts
 * const { profile, threads } = detectPlatform();
 * profile.name; // "local" on a laptop
 * ```
 */
export function detectPlatform(options: DetectOptions = {}): Platform {
  const env = options.env ?? defaultEnv;
  const globals = options.globals ?? (globalThis as unknown as Record<string, unknown>);
  const hasWorker = options.hasWorker ?? WORKER_AT_START;
  let profile: EdgeProfile = LOCAL_PROFILE;
  let reason = "no edge platform detected";
  const asked = env("EDGE_PROFILE")?.trim();
  if (asked) {
    profile = profileNamed(asked);
    reason = "EDGE_PROFILE";
  } else if (globals.Netlify !== undefined) {
    [profile, reason] = [PROFILES.netlify, "Netlify global"];
  } else if (globals.EdgeRuntime !== undefined || env("SUPABASE_URL")) {
    [profile, reason] = [PROFILES.supabase, "Supabase edge runtime"];
  } else if (env("DENO_DEPLOY") === "true" || env("DENO_DEPLOYMENT_ID")) {
    [profile, reason] = [PROFILES["deno-deploy"], "DENO_DEPLOY / DENO_DEPLOYMENT_ID"];
  }
  profile = withMemoryOverride(profile, env);
  // "probe": assumed here when the runtime has a Worker; the server confirms with probeWorkers.
  const workers = hasWorker && profile.workers !== false;
  return { profile, reason, workers, threads: workers ? undefined : 1 };
}

/**
 * The profile of a name; "local" is no profile.
 *
 * @throws {RangeError} For an unknown name.
 *
 * @example
 * ```ts
 * profileNamed("supabase").memoryBytes; // 268435456
 * ```
 */
export function profileNamed(name: string): EdgeProfile {
  if (name === "local") return LOCAL_PROFILE;
  const profile = PROFILES[name as EdgeProfileName];
  if (!profile) {
    throw new RangeError(
      `Cannot use edge profile "${name}": expected one of ${EDGE_PROFILES.join(", ")} or local`,
    );
  }
  return profile;
}

/**
 * Who runs a model's layers, which decides its memory: `int8-kernels` (an int8 model run
 * whole by our WebAssembly kernels: QDQ as our quantizer writes it, or QOperator like the
 * zoo's bvlcalexnet-12-int8, rewritten at load by src/model/qoperator.ts; onnxruntime-web
 * is never loaded) or `onnxruntime` (onnxruntime-web holds the weights, its prepacked
 * copies and, for int8, the per-run transposes' buffers).
 */
export type ModelRuntime = "int8-kernels" | "onnxruntime";

/**
 * Memory the server's isolate needs with a model loaded, estimated from the
 * model's file size: the server's own share plus a multiple of the file that
 * depends on who runs it. Measured with `deno task edge:sim --profile=supabase
 * --unchecked` (one inference thread, 5 requests; BENCHMARKS.md, "QOperator int8 on
 * our kernels"; 2026-12-07) as peak RSS minus a bare Deno process's (38 MB: the
 * runtime binary, which a platform running many isolates in one process does not
 * bill to each).
 */
export const MEMORY_MODEL = {
  /** The app and onnxruntime-web with a 12 KB model: 192-193 MB peak RSS, less 38. */
  baseBytes: 155 * MB,
  /** Bytes per byte of a float model file: 808 MB peak for the 233 MB synthetic AlexNet (861-919 on 2026-11-28). */
  fp32PerByte: 3.1,
  /**
   * Bytes per byte of an int8 file onnxruntime-web runs: 306-311 MB peak for a 58 MB
   * QOperator AlexNet (`INT8=ort`), 366 MB for our QDQ one, 440 MB in README's earlier run.
   */
  int8PerByte: 4.2,
  /**
   * Bytes per byte of an int8 file our kernels run whole: 245-252 MB peak for the QDQ
   * synthetic AlexNet, 245-284 MB for a QOperator one (58 MB each; the rewrite holds the
   * file and its QDQ copy at once).
   */
  int8KernelsPerByte: 1.6,
} as const;

/** Server flags that decide who runs an int8 model (src/config.ts). */
export interface RuntimeFlags {
  /** `--int8` (default `custom`: our kernels). */
  int8?: "custom" | "ort";
  /** `--backend` (edge profiles turn `auto` into `wasm`). */
  backend?: string;
  /** `--workers`: a pool of plain onnxruntime sessions when above 0. */
  workers?: number;
}

/**
 * Who will run a model of `precision` under the server's flags: our int8 kernels for
 * int8 on the wasm backend with `--int8 custom` and one session, else onnxruntime-web.
 *
 * @example
 * ```ts
 * modelRuntime("int8", { backend: "wasm" }); // "int8-kernels"
 * modelRuntime("int8", { int8: "ort" }); // "onnxruntime"
 * ```
 */
export function modelRuntime(precision: string, flags: RuntimeFlags = {}): ModelRuntime {
  const wasm = flags.backend === undefined || flags.backend === "auto" ||
    flags.backend === "wasm";
  return precision === "int8" && (flags.int8 ?? "custom") === "custom" && wasm &&
      !((flags.workers ?? 0) > 0)
    ? "int8-kernels"
    : "onnxruntime";
}

function perByte(precision: string, runtime: ModelRuntime): number {
  if (precision !== "int8") return MEMORY_MODEL.fp32PerByte;
  return runtime === "int8-kernels" ? MEMORY_MODEL.int8KernelsPerByte : MEMORY_MODEL.int8PerByte;
}

/**
 * The estimate of {@linkcode MEMORY_MODEL} for a model file. An int8 file is taken to run
 * on our kernels unless `runtime` says otherwise (the server's default, `--int8 custom`).
 *
 * @example
 * ```ts
 * estimateModelMemory(61_110_496, "int8"); // about 248 MB: our kernels
 * estimateModelMemory(61_110_496, "int8", "onnxruntime"); // about 400 MB
 * ```
 */
export function estimateModelMemory(
  modelBytes: number,
  precision = "fp32",
  runtime: ModelRuntime = modelRuntime(precision),
): number {
  return Math.round(MEMORY_MODEL.baseBytes + perByte(precision, runtime) * modelBytes);
}

/** A model that does not fit the platform's memory cap. */
export class ModelTooLargeError extends RangeError {
  /** Bytes the model is estimated (or measured) to need. */
  readonly neededBytes: number;
  /** The platform's cap. */
  readonly capBytes: number;

  /** Creates the error. */
  constructor(message: string, neededBytes: number, capBytes: number) {
    super(message);
    this.name = "ModelTooLargeError";
    this.neededBytes = neededBytes;
    this.capBytes = capBytes;
  }
}

const mb = (n: number) => `${Math.round(n / MB)} MB`;

/**
 * Refuses, before loading it, a model that cannot fit the profile's memory
 * cap. `what` names the model in the message; `runtime` is who will run it
 * ({@linkcode modelRuntime} of the server's flags; default: int8 on our kernels).
 *
 * @throws {ModelTooLargeError} With a message saying what to do.
 *
 * @example
 * ```ts
 * checkModelFits(PROFILES.supabase, "bvlcalexnet-12", 243_860_468, "fp32"); // throws
 * ```
 */
export function checkModelFits(
  profile: EdgeProfile,
  what: string,
  modelBytes: number,
  precision = "fp32",
  runtime: ModelRuntime = modelRuntime(precision),
): void {
  if (profile.memoryBytes === undefined) return;
  const needed = estimateModelMemory(modelBytes, precision, runtime);
  if (needed <= profile.memoryBytes) return;
  const instead = precision !== "int8"
    ? "serve the int8 model (MODEL=int8) or choose a platform with more memory"
    : runtime === "onnxruntime" &&
        estimateModelMemory(modelBytes, precision, "int8-kernels") <= profile.memoryBytes
    ? "run it on our int8 kernels (INT8=custom, no WORKERS) or choose a platform with more memory"
    : "choose a platform with more memory";
  throw new ModelTooLargeError(
    `Cannot load ${what} on ${profile.name}: with it the server needs about ${mb(needed)} of ` +
      `memory (${mb(modelBytes)} of ${precision} weights), the platform allows ${
        mb(profile.memoryBytes)
      }; ${instead}`,
    needed,
    profile.memoryBytes,
  );
}

/**
 * A warning when the process's resident memory, measured once the model is
 * loaded, is over the cap the estimate let through; undefined otherwise. A
 * warning, not a refusal: RSS also counts what an isolate platform may not
 * bill (the runtime's own code), so the platform's accounting decides.
 *
 * @example
 * ```ts
 * const warning = residentMemoryWarning(PROFILES.supabase, "alexnet-synthetic-int8");
 * ```
 */
export function residentMemoryWarning(
  profile: EdgeProfile,
  what: string,
  rss: number = Deno.memoryUsage().rss,
): string | undefined {
  if (profile.memoryBytes === undefined || rss <= profile.memoryBytes) return undefined;
  return `With ${what} loaded the process holds ${mb(rss)} (RSS), over ${profile.name}'s ` +
    `${mb(profile.memoryBytes)}: the platform may stop the isolate; serve a smaller model`;
}

/**
 * CPU time this process has used, in milliseconds (user + system, every
 * thread: node:process cpuUsage, which Deno implements with getrusage).
 * Subtract two readings for what happened between them; requests served at
 * the same time are counted in each other's difference.
 *
 * @example
 * ```ts
 * const before = processCpuMs();
 * // ... work ...
 * const spent = processCpuMs() - before;
 * ```
 */
export function processCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
