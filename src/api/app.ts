/**
 * The HTTP application: one sub-app per resource, mounted here.
 *
 * @module
 */
import { Hono } from "hono";
import { notFound, onError } from "./errors.ts";
import { healthRoutes } from "./health.ts";
import { modelRoutes } from "./models.ts";
import { predictRoutes } from "./predict.ts";
import type { ServerState } from "./state.ts";
import { STATIC_DIR, staticRoutes } from "./static.ts";

/** Options of {@linkcode createApp}. */
export interface AppOptions {
  /** Largest request body in bytes (default 10 MB). */
  maxBodyBytes?: number;
  /** Folder of the upload page (default static/). */
  staticDir?: URL;
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
  app.route("/", healthRoutes(state));
  app.route("/v1/models", modelRoutes(state));
  app.route(
    "/predict",
    predictRoutes(state, { maxBodyBytes: options.maxBodyBytes ?? 10 * 1024 * 1024 }),
  );
  app.route("/", staticRoutes(options.staticDir ?? STATIC_DIR));
  return app;
}
