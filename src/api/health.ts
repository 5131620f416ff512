/**
 * Liveness and readiness probes. Their 503 bodies say what to do, never where
 * files are: why a load failed (paths, stacks) goes to the server log only.
 *
 * @module
 */
import { Hono } from "hono";
import { errorResponse } from "./errors.ts";
import type { ServerState } from "./state.ts";

/** `GET /healthz` (the process answers) and `GET /readyz` (the model can serve). */
export function healthRoutes(state: ServerState): Hono {
  return new Hono()
    .get("/healthz", (c) => c.json({ status: "ok" }))
    .get("/readyz", (c) => {
      const failure = state.classifier?.failure;
      if (failure) return errorResponse(c, "not_ready", withoutPaths(failure));
      if (state.classifier) return c.json({ status: "ready", model: state.classifier.info.name });
      return errorResponse(c, "not_ready", notReadyMessage(state));
    });
}

/**
 * The 503 message while no model serves. A failed load is not described (its
 * error names files and folders); the server logged it as "Cannot load the
 * model: …" when it happened.
 *
 * @example
 * ```ts
 * notReadyMessage({}); // "Cannot classify yet: the model is still loading; retry in a few seconds"
 * ```
 */
export function notReadyMessage(state: ServerState): string {
  return state.loadError
    ? "Cannot classify: the model failed to load; the server log says why (the line " +
      '"Cannot load the model"); fix the model or --model and restart the server'
    : "Cannot classify yet: the model is still loading; retry in a few seconds";
}

/** Absolute paths of two or more segments, file: URLs and Windows drive paths. */
const PATH =
  /file:\/\/\S*|\b[A-Za-z]:\\[^\s'"`),;]*|(?<![\w.:/])\/[^\s'"`),;/]+(?:\/[^\s'"`),;]*)+/g;

/**
 * A backend's failure message fit for a client: any stack dropped and
 * filesystem paths replaced by "…" (a runtime's error text may carry them).
 * Single-segment paths such as `/readyz` are kept.
 *
 * @example
 * ```ts
 * withoutPaths("Cannot classify: the worker stopped (Cannot open /srv/models/a.onnx)");
 * // "Cannot classify: the worker stopped (Cannot open …)"
 * ```
 */
export function withoutPaths(message: string): string {
  const firstLine = message.split(/\r?\n\s*at /)[0];
  return firstLine.replace(PATH, "…");
}
