/**
 * `GET /v1/models`: the loaded model, its input, preprocessing, size,
 * weights provenance and backend.
 *
 * @module
 */
import { Hono } from "hono";
import { errorResponse } from "./errors.ts";
import { notReadyMessage } from "./health.ts";
import type { ServerState } from "./state.ts";

/** Routes describing the loaded model. */
export function modelRoutes(state: ServerState): Hono {
  return new Hono().get("/", (c) => {
    const classifier = state.classifier;
    if (!classifier) return errorResponse(c, "not_ready", notReadyMessage(state));
    return c.json({ models: [{ ...classifier.info, ready: true }] });
  });
}
