/**
 * `POST /predict`: classify one image.
 *
 * @module
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { errorResponse } from "./errors.ts";
import { notReadyMessage } from "./health.ts";
import { setTimings } from "./metrics.ts";
import type { ServerState } from "./state.ts";
import { parseTopK, readImageRequest } from "./_image_request.ts";

/** Options of the /predict route. */
export interface PredictOptions {
  /** Largest request body in bytes; larger ones get 413 while streaming. */
  maxBodyBytes: number;
}

/** The /predict route. */
export function predictRoutes(state: ServerState, options: PredictOptions): Hono {
  const limitMb = (options.maxBodyBytes / 1024 / 1024).toFixed(1);
  return new Hono().post(
    "/",
    bodyLimit({
      maxSize: options.maxBodyBytes,
      onError: (c) =>
        errorResponse(
          c,
          "payload_too_large",
          `Cannot accept the request: the body is over ${limitMb} MB`,
        ),
    }),
    async (c) => {
      const classifier = state.classifier;
      if (!classifier) return errorResponse(c, "not_ready", notReadyMessage(state));
      const { bytes, topK } = await readImageRequest(c.req.raw);
      const k = parseTopK(c.req.query("top_k") ?? topK, classifier.classes);
      const result = await classifier.classify(bytes, k);
      setTimings(c, result.timings_ms);
      return c.json(result);
    },
  );
}
