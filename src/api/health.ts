/**
 * Liveness and readiness probes.
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
      if (failure) return errorResponse(c, "not_ready", failure);
      if (state.classifier) return c.json({ status: "ready", model: state.classifier.info.name });
      return errorResponse(c, "not_ready", notReadyMessage(state));
    });
}

/** Why the model is not serving yet. */
export function notReadyMessage(state: ServerState): string {
  return state.loadError
    ? `Cannot classify: the model failed to load (${state.loadError})`
    : "Cannot classify yet: the model is still loading; retry in a few seconds";
}
