/**
 * The server behind every entrypoint (main.ts for `deno task start` and Deno
 * Deploy; deploy/netlify and deploy/supabase for their edge functions): the
 * app, its state, the model loaded in the background for the platform it
 * runs on, and draining for a graceful stop. Entrypoints only read the
 * configuration and hand {@linkcode AlexnetServer.fetch} to their platform.
 *
 * On an edge platform (src/platform/mod.ts): no Worker means one
 * inference thread; a model estimated to exceed the memory cap is refused
 * before loading (a warning if, loaded, it measures over); with `MODEL_URL` the
 * model is fetched into memory and verified by sha256, nothing is written.
 *
 * @module
 */
import { pathToFileURL } from "node:url";
import {
  createApp,
  createLogger,
  type Logger,
  ServerMetrics,
  type ServerState,
} from "./api/mod.ts";
import { classifierFromModel, loadClassifier } from "./classify/load.ts";
import { CALLS_PER_WORKER, type Classifier } from "./classify/mod.ts";
import type { Config } from "./config.ts";
import { ALEXNET_PARAMETERS } from "./model/alexnet_io.ts";
import { isPresent, sourcesFor } from "./model/fetch.ts";
import { fetchModelBytes } from "./model/fetch_memory.ts";
import { chooseStartupModel, type StartupChoice } from "./model/fetch_startup.ts";
import { type Manifest, parseLabels, parseManifest } from "./model/manifest.ts";
import {
  countParameters,
  imagenetLabels,
  type LoadedModel,
  MODELS_DIR,
  pinnedSha256,
  SYNTHETIC_NAME,
  syntheticManifest,
} from "./model/store.ts";
import { namedEntry } from "./model/zoo.ts";
import {
  checkModelFits,
  detectPlatform,
  modelRuntime,
  type Platform,
  probeWorkers,
  profileNamed,
  residentMemoryWarning,
  withMemoryOverride,
} from "./platform/mod.ts";

/** A configured server: hand `fetch` to Deno.serve or to a platform's handler. */
export interface AlexnetServer {
  /** Answers one request (503 `not_ready` with `Connection: close` once draining). */
  fetch(request: Request, info?: Deno.ServeHandlerInfo): Promise<Response>;
  /** What the routes read: the classifier once loaded, or why loading failed. */
  readonly state: ServerState;
  /** The platform the server runs on and what it allows. */
  readonly platform: Platform;
  /** Settles when the model is loaded or has failed to (then `state.loadError` says why). */
  readonly ready: Promise<void>;
  /** Requests being answered. */
  readonly inFlight: number;
  /**
   * Stops taking requests and waits for those in flight, at most `timeoutMs`.
   * Resolves true when all finished.
   */
  drain(timeoutMs: number): Promise<boolean>;
}

/** Options of {@linkcode createServer}. */
export interface ServerOptions {
  /** Where log lines go (default: JSON lines on stdout at `config.logLevel`). */
  logger?: Logger;
  /** The platform (default: detected, or `config.edgeProfile`). */
  platform?: Platform;
  /**
   * Hold requests until the model has loaded (or failed to) instead of answering 503
   * `not_ready`; /healthz and /readyz answer at once. For edge isolates, which start on a
   * user's request (default: true on an edge profile, false locally).
   */
  waitForModel?: boolean;
}

const MB = 1024 * 1024;

/** Bytes of the synthetic AlexNet's file: float32 parameters, the graph's few kB besides. */
const SYNTHETIC_BYTES = ALEXNET_PARAMETERS * 4;

/**
 * Builds the app for a configuration and starts loading the model in the
 * background; /readyz turns 200 when it is ready.
 *
 * @example
 * ```ts
 * const server = createServer(parseConfig(Deno.args, (k) => Deno.env.get(k)));
 * Deno.serve({ port: 8000 }, server.fetch);
 * ```
 */
export function createServer(config: Config, options: ServerOptions = {}): AlexnetServer {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  let platform = options.platform ?? detectPlatform();
  if (!options.platform && config.edgeProfile) {
    const profile = withMemoryOverride(profileNamed(config.edgeProfile));
    const workers = platform.workers && profile.workers !== false;
    const reason = "EDGE_PROFILE or --edge-profile";
    platform = { profile, reason, workers, threads: workers ? undefined : 1 };
  }
  const state: ServerState = {};
  const metrics = new ServerMetrics();
  const { maxBodyBytes, metricsPath, maxQueue, requestTimeoutMs, corsOrigins } = config;
  const { maxReaders, maxBatch, bodyIdleTimeoutMs, bodyReadTimeoutMs } = config;
  // An edge profile bounds images so that one decode cannot block the event loop for a second.
  const maxPixels = Math.min(config.maxPixels, platform.profile.maxPixels ?? Infinity);
  const app = createApp(state, {
    maxBodyBytes,
    metricsPath,
    metrics,
    logger,
    maxPixels,
    maxQueue,
    maxReaders,
    maxBatch,
    bodyIdleTimeoutMs,
    bodyReadTimeoutMs,
    runLanes: runLanes(config, platform),
    requestTimeoutMs,
    corsOrigins,
  });
  let inFlight = 0;
  let stopping = false;
  let loaded = false;

  const { profile } = platform;
  const waitForModel = options.waitForModel ?? profile.name !== "local";
  if (profile.name !== "local") {
    logger.info(`Platform: ${profile.name} (${platform.reason})`, {
      platform: profile.name,
      memory_cap_mb: profile.memoryBytes && profile.memoryBytes / MB,
      cpu_ms_per_request: profile.cpuMsPerRequest,
      workers: platform.workers,
      max_pixels: maxPixels,
    });
  }
  // A block this long stalls every request the server holds; a platform with a documented
  // limit sets its own.
  watchEventLoop(profile.maxBlockMs ?? 1000, logger);

  const started = performance.now();
  const ready = loadModel(config, platform, logger).then((classifier) => {
    const loadMs = Math.round(performance.now() - started);
    const { info } = classifier;
    const { name, weights, backend, parameters } = info;
    state.classifier = classifier;
    metrics.recordModelLoad(name, loadMs / 1000);
    logger.info(
      `Model ${name} ready in ${loadMs} ms: ` +
        `${parameters} parameters, ${weights.kind} weights, ${backend.name} backend, ` +
        `${backend.threads} threads`,
      {
        model: name,
        load_ms: loadMs,
        parameters,
        weights: weights.kind,
        precision: info.precision,
        backend: backend.name,
        threads: backend.threads,
        rss_mb: Math.round(Deno.memoryUsage().rss / MB),
      },
    );
    if (weights.notice) logger.warn(weights.notice, { model: name });
    const warning = residentMemoryWarning(profile, name);
    if (warning) logger.warn(warning, { model: name });
  }).catch((e) => {
    state.loadError = (e as Error).message;
    logger.error(`Cannot load the model: ${state.loadError}`, {
      load_ms: Math.round(performance.now() - started),
    });
  }).finally(() => {
    loaded = true;
  });

  return {
    state,
    platform,
    ready,
    get inFlight() {
      return inFlight;
    },
    async fetch(request: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
      if (stopping) {
        const error = { code: "not_ready", message: "Cannot serve: the server is shutting down" };
        return Response.json({ error }, {
          status: 503,
          headers: { "retry-after": "1", connection: "close" },
        });
      }
      inFlight++;
      try {
        if (
          waitForModel && !loaded && !/^\/(healthz|readyz)$/.test(new URL(request.url).pathname)
        ) {
          await ready;
        }
        return await app.fetch(request, info);
      } finally {
        inFlight--;
      }
    },
    async drain(timeoutMs: number): Promise<boolean> {
      stopping = true;
      const deadline = performance.now() + timeoutMs;
      while (inFlight > 0 && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 25));
      }
      return inFlight === 0;
    },
  };
}

/**
 * Logs a warning whenever the event loop was blocked longer than `limitMs`
 * (a timer firing that late): every request waits meanwhile, and platforms that limit
 * blocking stop the isolate.
 */
function watchEventLoop(limitMs: number, logger: Logger): void {
  const every = 100;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const blocked = now - last - every;
    last = now;
    if (blocked > limitMs) {
      logger.warn(`The event loop was blocked for ${Math.round(blocked)} ms`, {
        blocked_ms: Math.round(blocked),
        limit_ms: limitMs,
      });
    }
  }, every);
  Deno.unrefTimer(timer);
}

/**
 * Self-hosted, the one session runs in its own Worker (the server's thread then answers, and
 * refuses, while it infers); an edge profile keeps it on this thread, as asked or by default.
 */
function inferenceInWorker(config: Config, platform: Platform): boolean {
  const edge = platform.profile.name !== "local";
  return platform.workers && (config.inferenceThread ?? (edge ? "main" : "worker")) === "worker";
}

/**
 * Requests the model's backend takes at once: each Worker (a pool's N, or the one session's)
 * takes CALLS_PER_WORKER and orders their runs itself; a session on this thread takes one.
 */
function runLanes(config: Config, platform: Platform): number {
  if (!platform.workers) return 1;
  if (config.workers) return config.workers * CALLS_PER_WORKER;
  return inferenceInWorker(config, platform) ? CALLS_PER_WORKER : 1;
}

/** Loads the model the configuration names, the way the platform allows. */
async function loadModel(config: Config, platform: Platform, logger: Logger): Promise<Classifier> {
  const log = (line: string) => logger.info(line);
  // A platform whose docs say nothing of Workers (Netlify): start one, else run one thread.
  if (platform.workers && platform.profile.workers === "probe" && !(await probeWorkers())) {
    logger.warn(`No Worker starts on ${platform.profile.name}: running one thread`);
    platform = { ...platform, workers: false, threads: 1 };
  }
  // No Worker API: one inference thread (onnxruntime-web's threads and our kernels' helpers are
  // Workers), and no worker pool.
  const threads = platform.workers ? config.threads : 1;
  if (!platform.workers && (config.threads ?? 1) > 1) {
    logger.warn(
      `No Worker API on ${platform.profile.name}: running one thread, not ${config.threads}`,
    );
  }
  // The edge platforms have no GPU: `auto` skips the WebGPU probe there (it costs cold-start
  // time, and where a software Vulkan driver is installed, tens of MB of RSS).
  const edge = platform.profile.name !== "local";
  const backend = edge && config.backend === "auto" ? "wasm" : config.backend;
  const inferenceWorker = inferenceInWorker(config, platform);
  if (!platform.workers && config.inferenceThread === "worker") {
    logger.warn(
      `No Worker API on ${platform.profile.name}: inference runs on the server's thread`,
    );
  }
  const run = {
    ...config,
    backend,
    threads,
    workers: platform.workers ? config.workers : undefined,
    inferenceWorker,
    log,
    // The inference Workers' own lines, with their level and fields, and their restarts.
    logger,
  };
  const named = config.model ? namedEntry(config.model) : undefined;
  // On an edge platform a pinned zoo model that is not in the deployment (always so where code
  // is capped at 20 MB) is fetched into memory: its filesystem is read-only.
  const codeCapped = (platform.profile.codeBytes ?? Infinity) <= 20 * MB;
  const edgeZoo = platform.profile.name !== "local" && named?.sha256 !== undefined &&
    (codeCapped || !(await isPresent(named)));
  if (config.modelUrls.length > 0 || edgeZoo) {
    logger.info("Fetching the model into memory", { model: config.model ?? SYNTHETIC_NAME });
    return await classifierFromModel(await remoteModel(config, platform, log), run);
  }
  logger.info("Loading the model", {
    model: config.model ?? "synthetic",
    seed: config.model ? undefined : config.seed,
  });
  // Picks the best model in models/ (a first run fetches the int8 zoo AlexNet when a mirror
  // answers within --fetch-timeout, else starts on the synthetic one), then loads it.
  const choice = await chooseStartupModel({ ...config, log });
  logger.info(`Model: ${choice.reason}`, { model: choice.model ?? "synthetic" });
  if (choice.notice) logger.warn(choice.notice);
  const { bytes, precision } = await sizeOf(choice);
  const what = choice.model?.slice(choice.model.lastIndexOf("/") + 1) ?? SYNTHETIC_NAME;
  checkModelFits(platform.profile, what, bytes, precision, runtimeOf(precision, config, platform));
  return await loadClassifier({ ...run, ...choice });
}

/** Who will run a model of `precision` here (`--workers` only counts where Workers exist). */
function runtimeOf(precision: string, config: Config, platform: Platform) {
  return modelRuntime(precision, {
    ...config,
    workers: platform.workers ? config.workers : undefined,
  });
}

/** The file size and precision of a start-up choice, for the memory check. */
async function sizeOf(choice: StartupChoice): Promise<{ bytes: number; precision: string }> {
  if (!choice.model) {
    const file = new URL(`${SYNTHETIC_NAME}.onnx`, MODELS_DIR);
    const bytes = await Deno.stat(file).then((s) => s.size, () => SYNTHETIC_BYTES);
    return { bytes, precision: "fp32" };
  }
  const manifestPath = choice.manifest ?? choice.model.replace(/\.onnx$/i, "") + ".json";
  const json = await Deno.readTextFile(manifestPath).then(JSON.parse, () => undefined);
  const bytes = await Deno.stat(choice.model).then((s) => s.size, () => 0);
  const precision = json?.precision ??
    (/int8|qdq|quant/i.test(choice.model) ? "int8" : "fp32");
  return { bytes, precision };
}

/**
 * The model of `MODEL_URL` (or, on a code-capped platform, a pinned zoo model
 * from its mirrors) fetched into memory: its manifest is the zoo entry's, the
 * synthetic AlexNet's, or `MODEL_MANIFEST`; the sha256 is pinned or
 * `MODEL_SHA256`.
 */
async function remoteModel(
  config: Config,
  platform: Platform,
  log: (line: string) => void,
): Promise<LoadedModel> {
  const named = config.model ? namedEntry(config.model) : undefined;
  let manifest: Manifest;
  let manifestUrl: URL;
  let sha256 = config.modelSha256;
  let size: number | undefined;
  if (named) {
    manifest = named.manifest;
    manifestUrl = new URL(`${named.name}.json`, MODELS_DIR);
    if (named.sha256 && (sha256 === undefined || sha256 === named.sha256)) {
      [sha256, size] = [named.sha256, named.bytes];
    }
  } else if (config.manifest) {
    manifestUrl = pathToFileURL(config.manifest);
    const text = await Deno.readTextFile(manifestUrl);
    manifest = parseManifest(JSON.parse(text), manifestUrl.pathname);
  } else if (!config.model || config.model === "synthetic") {
    manifest = syntheticManifest(config.seed);
    manifestUrl = new URL(`${SYNTHETIC_NAME}.json`, MODELS_DIR);
  } else {
    throw new TypeError(
      `Cannot fetch ${config.model} from MODEL_URL: name a known model with MODEL (int8, fp32, ` +
        "synthetic) or give its manifest with MODEL_MANIFEST",
    );
  }
  if (!sha256) {
    throw new TypeError(
      "Cannot verify the model fetched from MODEL_URL: set MODEL_SHA256 to its sha256 " +
        "(`sha256sum model.onnx`)",
    );
  }
  // /v1/models reports the manifest's sha256: it must be the one the bytes are checked against.
  const pinned = pinnedSha256(manifest);
  if (pinned && pinned !== sha256.toLowerCase()) {
    throw new TypeError(
      `Cannot serve ${manifest.name} from MODEL_URL: its manifest pins sha256 ` +
        `${pinned.slice(0, 12)}…, MODEL_SHA256 is ${sha256.slice(0, 12)}…; make them agree`,
    );
  }
  const precision = manifest.precision ?? named?.precision ?? "fp32";
  // Who runs it decides the memory: int8 on our kernels needs far less than on onnxruntime.
  const runtime = runtimeOf(precision, config, platform);
  if (size !== undefined) {
    checkModelFits(platform.profile, manifest.name, size, precision, runtime);
  }
  const sources = config.modelUrls.length > 0
    ? config.modelUrls
    : sourcesFor(named!, { mirrors: config.mirrors });
  const bytes = await fetchModelBytes(sources, { sha256, bytes: size, log });
  checkModelFits(platform.profile, manifest.name, bytes.length, precision, runtime);
  const labels = manifest.labels === "imagenet_labels.json" ? imagenetLabels() : parseLabels(
    await Deno.readTextFile(new URL(manifest.labels, manifestUrl)),
    manifest.labels,
  );
  const parameters = manifest.parameters ?? await countParameters(bytes);
  return { manifest, manifestUrl, bytes, labels, parameters };
}
