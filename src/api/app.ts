/**
 * The HTTP application: one sub-app per resource, mounted here.
 *
 * @module
 */
import { Hono } from "hono";
import { notFound, onError } from "./errors.ts";
import { healthRoutes } from "./health.ts";
import { createLogger, type Logger } from "./logger.ts";
import { requestLog } from "./logging.ts";
import { metricsRoutes, recordMetrics, ServerMetrics } from "./metrics.ts";
import { modelRoutes } from "./models.ts";
import { predictRoutes } from "./predict.ts";
import { requestId } from "./request_id.ts";
import type { ServerState } from "./state.ts";
import { STATIC_DIR, staticRoutes } from "./static.ts";

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
  const app = new Hono();
  app.onError(onError);
  app.notFound(notFound);
  app.use(requestId());
  app.use(requestLog({ logger: options.logger ?? createLogger({ level: "error" }), state }));
  const metrics = options.metrics ?? new ServerMetrics();
  app.use(recordMetrics({ metrics }));
  const metricsPath = options.metricsPath ?? "/metrics";
  if (metricsPath !== false) app.route(metricsPath, metricsRoutes(state, metrics));
  app.route("/", healthRoutes(state));
  app.route("/v1/models", modelRoutes(state));
  app.route(
    "/predict",
    predictRoutes(state, { maxBodyBytes: options.maxBodyBytes ?? 10 * 1024 * 1024 }),
  );
  app.route("/", staticRoutes(options.staticDir ?? STATIC_DIR));
  return app;
}
