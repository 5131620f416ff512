/**
 * The HTTP application: one sub-app per resource, mounted here.
 *
 * @module
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Hono } from "hono";
import type { BlankEnv } from "hono/types";
import { browserRoutes } from "./browser.ts";
import { docsRoutes } from "./docs.ts";
import { notFound, onError } from "./errors.ts";
import { explorerRoutes } from "./explorer.ts";
import { healthRoutes } from "./health.ts";
import { requestTimeout } from "./limits.ts";
import { createLogger, type Logger } from "../log.ts";
import { requestLog } from "./logging.ts";
import { metricsRoutes, recordMetrics, ServerMetrics } from "./metrics.ts";
import { modelRoutes } from "./models.ts";
import { Pipeline } from "./pipeline.ts";
import { predictRoutes } from "./predict.ts";
import { requestId } from "./request_id.ts";
import type { ServerState } from "./state.ts";
import { STATIC_DIR, staticRoutes } from "./static.ts";
import { oipRoutes } from "./v2/mod.ts";
import type { LocateModel } from "./_model_files.ts";
import { corsPolicy, securityHeaders } from "./_secure.ts";

/** Options of {@linkcode createApp}. */
export interface AppOptions {
  /** Largest request body in bytes (default 10 MB). */
  maxBodyBytes?: number;
  /** Folder of the upload page (default static/). */
  staticDir?: URL;
  /** Path of the Prometheus scrape; false serves none (default "/metrics"). */
  metricsPath?: string | false;
  /** Where request counts and timings go (default: a new set). */
  metrics?: ServerMetrics;
  /** Request log (default: only answers that failed unexpectedly, to stdout). */
  logger?: Logger;
  /** Largest image of any route, width x height from its header; larger gets 422 (default 40 MP). */
  maxPixels?: number;
  /** Most image and tensor requests admitted, all routes together; more get 503 (default 32). */
  maxQueue?: number;
  /** Most bodies read at once; more get 503 with Retry-After (default 64). */
  maxReaders?: number;
  /** Most images or tensors in one /v2 inference; more get 413 (default 16). */
  maxBatch?: number;
  /** Longest pause between two chunks of a body; longer gets 408 (default 2 s). */
  bodyIdleTimeoutMs?: number;
  /** Longest time to read a whole body; longer gets 408 (default 5 s). */
  bodyReadTimeoutMs?: number;
  /** Runs on the model's backend at once (default 1; 2 per inference Worker). */
  runLanes?: number;
  /** Deadline of every request; later gets 503 with Retry-After (default 30 s). */
  requestTimeoutMs?: number;
  /** Finds the loaded model's files for the explorer (default: its manifest in models/). */
  locateModel?: LocateModel;
  /** Origins allowed by CORS, ["*"] for any (default: none, CORS off). */
  corsOrigins?: readonly string[];
}

/**
 * Creates the Hono app over a server state; the state's classifier may be
 * set later, when the model has loaded.
 *
 * @example
 * ```ts
 * const state: ServerState = {};
 * const app = createApp(state);
 * Deno.serve(app.fetch);
 * state.classifier = await loadClassifier();
 * ```
 */
export function createApp(state: ServerState, options: AppOptions = {}): Hono {
  // OpenAPIHono collects the OpenAPI definitions of the sub-apps that have them (/v2, /docs).
  const app = new OpenAPIHono<BlankEnv>();
  app.onError(onError);
  app.notFound(notFound);
  app.use(requestId());
  app.use(requestLog({ logger: options.logger ?? createLogger({ level: "error" }), state }));
  const metrics = options.metrics ?? new ServerMetrics();
  app.use(recordMetrics({ metrics }));
  app.use(securityHeaders());
  if (options.corsOrigins?.length) app.use(corsPolicy(options.corsOrigins));
  app.use(requestTimeout({ ms: options.requestTimeoutMs ?? 30_000 }));
  const metricsPath = options.metricsPath ?? "/metrics";
  if (metricsPath !== false) app.route(metricsPath, metricsRoutes(state, metrics));
  app.route("/", healthRoutes(state));
  app.route("/v1/models", modelRoutes(state));
  // One pipeline, so one queue, one set of budgets and one deadline for every image or tensor.
  const pipeline = new Pipeline({ ...options, onReject: () => metrics.rejections.inc() });
  app.route("/predict", predictRoutes(state, pipeline));
  app.route("/v1/explorer", explorerRoutes(state, { pipeline, locate: options.locateModel }));
  app.route("/", browserRoutes(state));
  app.route("/v2", oipRoutes(state, { pipeline }));
  app.route("/", docsRoutes(app, { metricsPath }));
  app.route("/", staticRoutes(options.staticDir ?? STATIC_DIR));
  return app;
}
