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
import { predictRoutes } from "./predict.ts";
import { requestId } from "./request_id.ts";
import type { ServerState } from "./state.ts";
import { STATIC_DIR, staticRoutes } from "./static.ts";
import { oipRoutes } from "./v2/mod.ts";
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
  /** Largest image for /predict, width x height from its header; larger gets 422 (default 40 MP). */
  maxPixels?: number;
  /** Most /predict requests in progress or waiting; more get 503 with Retry-After (default 32). */
  maxQueue?: number;
  /** Deadline of every request; later gets 503 with Retry-After (default 30 s). */
  requestTimeoutMs?: number;
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
  app.route(
    "/predict",
    predictRoutes(state, {
      maxBodyBytes: options.maxBodyBytes ?? 10 * 1024 * 1024,
      maxPixels: options.maxPixels,
      maxQueue: options.maxQueue,
      onReject: () => metrics.rejections.inc(),
    }),
  );
  app.route(
    "/v1/explorer",
    explorerRoutes(state, { maxBodyBytes: options.maxBodyBytes ?? 10 * 1024 * 1024 }),
  );
  app.route("/", browserRoutes(state));
  app.route(
    "/v2",
    oipRoutes(state, {
      maxBodyBytes: options.maxBodyBytes ?? 10 * 1024 * 1024,
      maxPixels: options.maxPixels,
      onReject: () => metrics.rejections.inc(),
    }),
  );
  app.route("/", docsRoutes(app, { metricsPath }));
  app.route("/", staticRoutes(options.staticDir ?? STATIC_DIR));
  return app;
}
