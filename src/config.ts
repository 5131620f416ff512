/**
 * One typed configuration for the server and the CLI, from flags and
 * environment variables, validated once at start-up. Flags win over env.
 * Defaults are documented in README's configuration table.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { LOG_LEVELS, type LogLevel } from "./log.ts";
import { BACKEND_REQUESTS, type BackendRequest } from "./runtime/select.ts";
import { EDGE_PROFILES } from "./platform/mod.ts";

const EDGE_PROFILE_NAMES: readonly string[] = [...EDGE_PROFILES, "local"];

/** Validated configuration. */
export interface Config {
  /** TCP port (flag --port, env PORT; default 8000). */
  port: number;
  /** Interface to listen on (flag --host, env HOST; default 0.0.0.0). */
  hostname: string;
  /**
   * Model to serve (flag --model, env MODEL): an ONNX file, a known name (`bvlcalexnet-12-int8`,
   * `int8`, `fp32`, ...) or `synthetic`; with no value the best model in models/.
   */
  model?: string;
  /** Manifest of --model (flag --manifest, env MODEL_MANIFEST; default: the model path with .json). */
  manifest?: string;
  /** Intra-op threads (flag --threads, env THREADS; default: the available cores). */
  threads?: number;
  /**
   * Single-threaded wasm sessions in Workers instead of one session with --threads (flag
   * --workers, env WORKERS; default 0: one session). See README, "Serving under load".
   */
  workers?: number;
  /**
   * Where the one session (`--workers 0`) runs inference and decodes images (flag
   * --inference-thread, env INFERENCE_THREAD): `worker`, one dedicated Worker, so the server's
   * thread only does HTTP and admission; or `main`, the server's thread. Default: `worker` on a
   * self-hosted server, `main` on an edge profile. See README, "Serving under load".
   */
  inferenceThread?: "worker" | "main";
  /** Largest accepted request body in bytes (flag --max-body, env MAX_BODY; default 10 MB). */
  maxBodyBytes: number;
  /** Seed of the synthetic weights (flag --seed, env SEED; default 1). */
  seed: number;
  /** Never download a model at start-up (flag --offline, env MODEL_OFFLINE=1; default false). */
  offline: boolean;
  /** How long start-up waits for a mirror to answer (flag --fetch-timeout, env MODEL_FETCH_TIMEOUT; default 5 s). */
  fetchTimeoutMs: number;
  /** Mirror base URLs tried before the built-in ones (env MODEL_MIRRORS, space or comma separated). */
  mirrors: string[];
  /**
   * Inference backend (flag --backend, env BACKEND): `auto` (WebGPU when a hardware GPU
   * adapter answers, else wasm), `wasm`, `webgpu` or `native` (onnxruntime-node, self-hosted
   * servers only). Default auto. A backend that cannot start falls back to wasm, logged.
   */
  backend: BackendRequest;
  /** Who runs LRN: our WASM kernel or onnxruntime's (flag --lrn, env LRN; default ort, the faster end to end). */
  lrn?: "custom" | "ort";
  /** Who runs quantized Gemm layers: our int8 WASM kernel or onnxruntime's (flag --int8, env INT8; default custom). */
  int8?: "custom" | "ort";
  /** Least severe log line written (flag --log-level, env LOG_LEVEL; default info). */
  logLevel: LogLevel;
  /** Path of the Prometheus scrape, false for none (flag --metrics-path, env METRICS_PATH; "off" disables; default /metrics). */
  metricsPath: string | false;
  /** Largest image accepted, width x height, read from its header (flag --max-pixels, env MAX_PIXELS; default 40 megapixels). */
  maxPixels: number;
  /**
   * Most image and tensor requests (/predict, /v2 infer, /v1/explorer/features together) decoding,
   * waiting for or running inference; more get 503 (flag --max-queue, env MAX_QUEUE; default 32).
   */
  maxQueue: number;
  /**
   * Most request bodies read at once, before admission; more get 503 (flag --max-readers, env
   * MAX_READERS; default 64). A slow uploader holds one of these, never a place in the queue.
   */
  maxReaders: number;
  /** Most images or tensors in one /v2 inference; more get 413 (flag --max-batch, env MAX_BATCH; default 16). */
  maxBatch: number;
  /** Longest pause between two chunks of a body; longer gets 408 (flag --body-idle-timeout, env BODY_IDLE_TIMEOUT; default 2 s). */
  bodyIdleTimeoutMs: number;
  /** Longest time to read a whole body; longer gets 408 (flag --body-read-timeout, env BODY_READ_TIMEOUT; default 5 s). */
  bodyReadTimeoutMs: number;
  /** Deadline of one request; later gets 503 (flag --request-timeout, env REQUEST_TIMEOUT; default 30 s). */
  requestTimeoutMs: number;
  /** Origins allowed by CORS, ["*"] for any; none when absent (flag --cors-origin, env CORS_ORIGIN; default off). */
  corsOrigins?: string[];
  /**
   * URLs the model is fetched from into memory at start-up, tried in order (flag --model-url,
   * repeatable, or env MODEL_URL, space or comma separated; default none). For edge platforms
   * whose code size is capped; see README, "Deploy".
   */
  modelUrls: string[];
  /** sha256 the fetched model must have (flag --model-sha256, env MODEL_SHA256); zoo models are pinned. */
  modelSha256?: string;
  /** Edge platform profile to apply (flag --edge-profile, env EDGE_PROFILE; default: detected). */
  edgeProfile?: string;
}

/** Parses "40mp", "40000000", "1.5mp" into a pixel count. */
export function parsePixels(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(mp)?\s*$/i.exec(text);
  const n = m ? Math.floor(Number(m[1]) * (m[2] ? 1e6 : 1)) : NaN;
  if (!(n >= 1)) {
    throw new RangeError(`Cannot use max-pixels=${text}: use e.g. 40mp or a pixel count`);
  }
  return n;
}

/** Parses "off", "*" or a comma-separated list of origins like https://app.example:8443. */
export function parseCorsOrigins(text: string): string[] | undefined {
  const items = text.split(",").map((s) => s.trim()).filter(Boolean);
  if (items.length === 0 || (items.length === 1 && items[0].toLowerCase() === "off")) {
    return undefined;
  }
  for (const item of items) {
    if (item !== "*" && !/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/.test(item)) {
      throw new RangeError(
        `Cannot use cors-origin=${item}: expected *, off, or origins like https://app.example`,
      );
    }
  }
  return items;
}

/** Parses "10mb", "512kb", "1048576" into bytes. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(text);
  if (!m) throw new TypeError(`Cannot parse size "${text}": use e.g. 10mb, 512kb or a byte count`);
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[
    (m[2] ?? "b").toLowerCase() as "b"
  ];
  return Math.floor(Number(m[1]) * unit);
}

/** Parses "5s", "500ms", "2.5" (seconds) into milliseconds. */
export function parseDuration(name: string, text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$/i.exec(text);
  if (!m) throw new TypeError(`Cannot use ${name}=${text}: use e.g. 5s, 500ms or seconds`);
  return Math.round(Number(m[1]) * (m[2]?.toLowerCase() === "ms" ? 1 : 1000));
}

function positive(name: string, text: string, value: number): number {
  if (!(value > 0)) throw new RangeError(`Cannot use ${name}=${text}: it must be above 0`);
  return value;
}

function integer(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(`Cannot use ${name}=${text}: expected an integer from ${min} to ${max}`);
  }
  return n;
}

/**
 * Builds the configuration from command-line arguments and an environment
 * lookup. Throws a TypeError/RangeError naming the bad setting.
 *
 * @example
 * ```ts
 * const config = parseConfig(Deno.args, (k) => Deno.env.get(k));
 * ```
 */
export function parseConfig(
  args: string[],
  env: (key: string) => string | undefined = () => undefined,
): Config & { positionals: string[]; json: boolean; topK: number } {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      model: { type: "string" },
      manifest: { type: "string" },
      threads: { type: "string" },
      workers: { type: "string" },
      "inference-thread": { type: "string" },
      "max-body": { type: "string" },
      seed: { type: "string" },
      backend: { type: "string" },
      lrn: { type: "string" },
      int8: { type: "string" },
      "log-level": { type: "string" },
      "metrics-path": { type: "string" },
      offline: { type: "boolean" },
      "fetch-timeout": { type: "string" },
      "max-pixels": { type: "string" },
      "max-queue": { type: "string" },
      "max-readers": { type: "string" },
      "max-batch": { type: "string" },
      "body-idle-timeout": { type: "string" },
      "body-read-timeout": { type: "string" },
      "request-timeout": { type: "string" },
      "cors-origin": { type: "string" },
      "model-url": { type: "string", multiple: true },
      "model-sha256": { type: "string" },
      "edge-profile": { type: "string" },
      json: { type: "boolean", default: false },
      "top-k": { type: "string" },
    },
  });
  const get = (flag: keyof typeof values, key: string) =>
    (values[flag] as string | undefined) ?? env(key);
  const port = get("port", "PORT");
  const threads = get("threads", "THREADS");
  const workers = get("workers", "WORKERS");
  const inferenceThread = get("inference-thread", "INFERENCE_THREAD")?.trim() || undefined;
  if (inferenceThread !== undefined && inferenceThread !== "worker" && inferenceThread !== "main") {
    throw new RangeError(
      `Cannot use inference-thread=${inferenceThread}: expected "worker" or "main"`,
    );
  }
  const maxBody = get("max-body", "MAX_BODY");
  const seed = get("seed", "SEED");
  const lrn = get("lrn", "LRN");
  const int8 = get("int8", "INT8");
  const backend = get("backend", "BACKEND") ?? "auto";
  if (!BACKEND_REQUESTS.includes(backend as BackendRequest)) {
    throw new RangeError(
      `Cannot use backend=${backend}: expected one of ${BACKEND_REQUESTS.join(", ")}`,
    );
  }
  if (int8 !== undefined && int8 !== "custom" && int8 !== "ort") {
    throw new RangeError(`Cannot use int8=${int8}: expected "custom" or "ort"`);
  }
  if (lrn !== undefined && lrn !== "custom" && lrn !== "ort") {
    throw new RangeError(`Cannot use lrn=${lrn}: expected "custom" or "ort"`);
  }
  const logLevel = get("log-level", "LOG_LEVEL") ?? "info";
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) {
    throw new RangeError(
      `Cannot use log-level=${logLevel}: expected one of ${LOG_LEVELS.join(", ")}`,
    );
  }
  const metricsPath = get("metrics-path", "METRICS_PATH") ?? "/metrics";
  if (metricsPath !== "off" && !/^(\/[\w.~-]+)+$/.test(metricsPath)) {
    throw new RangeError(
      `Cannot use metrics-path=${metricsPath}: expected a path like /metrics, or off`,
    );
  }
  const topK = values["top-k"];
  const fetchTimeout = get("fetch-timeout", "MODEL_FETCH_TIMEOUT");
  const maxPixels = get("max-pixels", "MAX_PIXELS");
  const maxQueue = get("max-queue", "MAX_QUEUE");
  const maxReaders = get("max-readers", "MAX_READERS");
  const maxBatch = get("max-batch", "MAX_BATCH");
  const bodyIdle = get("body-idle-timeout", "BODY_IDLE_TIMEOUT");
  const bodyRead = get("body-read-timeout", "BODY_READ_TIMEOUT");
  const requestTimeout = get("request-timeout", "REQUEST_TIMEOUT");
  const corsOrigin = get("cors-origin", "CORS_ORIGIN");
  const modelSha256 = get("model-sha256", "MODEL_SHA256")?.trim().toLowerCase() || undefined;
  if (modelSha256 !== undefined && !/^[0-9a-f]{64}$/.test(modelSha256)) {
    throw new RangeError(`Cannot use model-sha256=${modelSha256}: expected 64 hex digits`);
  }
  const edgeProfile = get("edge-profile", "EDGE_PROFILE")?.trim() || undefined;
  if (edgeProfile !== undefined && !EDGE_PROFILE_NAMES.includes(edgeProfile)) {
    throw new RangeError(
      `Cannot use edge-profile=${edgeProfile}: expected one of ${EDGE_PROFILE_NAMES.join(", ")}`,
    );
  }
  return {
    port: port === undefined ? 8000 : integer("port", port, 0, 65535),
    hostname: get("host", "HOST") ?? "0.0.0.0",
    model: get("model", "MODEL") || undefined,
    manifest: get("manifest", "MODEL_MANIFEST") || undefined,
    threads: threads === undefined ? undefined : integer("threads", threads, 1, 64),
    workers: workers === undefined ? undefined : integer("workers", workers, 0, 64),
    inferenceThread,
    maxBodyBytes: maxBody === undefined ? 10 * 1024 * 1024 : parseSize(maxBody),
    seed: seed === undefined ? 1 : integer("seed", seed, 0, 2 ** 32 - 1),
    backend: backend as BackendRequest,
    lrn,
    int8,
    logLevel: logLevel as LogLevel,
    metricsPath: metricsPath === "off" ? false : metricsPath,
    offline: (values.offline as boolean | undefined) ??
      /^(1|true|yes|on)$/i.test(env("MODEL_OFFLINE") ?? ""),
    fetchTimeoutMs: fetchTimeout === undefined
      ? 5_000
      : parseDuration("fetch-timeout", fetchTimeout),
    mirrors: (env("MODEL_MIRRORS") ?? "").split(/[\s,]+/).filter(Boolean),
    maxPixels: maxPixels === undefined ? 40_000_000 : parsePixels(maxPixels),
    maxQueue: maxQueue === undefined ? 32 : integer("max-queue", maxQueue, 1, 100_000),
    maxReaders: maxReaders === undefined ? 64 : integer("max-readers", maxReaders, 1, 100_000),
    maxBatch: maxBatch === undefined ? 16 : integer("max-batch", maxBatch, 1, 1024),
    bodyIdleTimeoutMs: bodyIdle === undefined
      ? 2_000
      : positive("body-idle-timeout", bodyIdle, parseDuration("body-idle-timeout", bodyIdle)),
    bodyReadTimeoutMs: bodyRead === undefined
      ? 5_000
      : positive("body-read-timeout", bodyRead, parseDuration("body-read-timeout", bodyRead)),
    requestTimeoutMs: requestTimeout === undefined ? 30_000 : positive(
      "request-timeout",
      requestTimeout,
      parseDuration("request-timeout", requestTimeout),
    ),
    corsOrigins: corsOrigin === undefined ? undefined : parseCorsOrigins(corsOrigin),
    modelUrls: (values["model-url"] as string[] | undefined) ??
      (env("MODEL_URL") ?? "").split(/[\s,]+/).filter(Boolean),
    modelSha256,
    edgeProfile,
    positionals,
    json: values.json as boolean,
    topK: topK === undefined ? 5 : integer("top-k", topK, 1, 1000),
  };
}
