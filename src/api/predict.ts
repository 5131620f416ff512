/**
 * `POST /predict`: classify one image.
 *
 * @module
 */
import { Hono } from "hono";
import { QueueFullError } from "../host/bounded_queue.ts";
import { processCpuMs } from "../platform/mod.ts";
import { errorResponse } from "./errors.ts";
import { notReadyMessage } from "./health.ts";
import { admission, bodyLimit, requestSignal, unavailable } from "./limits.ts";
import { setTimings } from "./metrics.ts";
import type { ServerState } from "./state.ts";
import { parseTopK, readImageRequest } from "./_image_request.ts";

/** Options of the /predict route. */
export interface PredictOptions {
  /** Largest request body in bytes; larger ones get 413 while streaming. */
  maxBodyBytes: number;
  /** Largest image (width x height, from its header); larger ones get 422 (default 40 MP). */
  maxPixels?: number;
  /** Most requests in progress or waiting; more get 503 with Retry-After (default 32). */
  maxQueue?: number;
  /** Called for each request turned away by a full queue (the metrics count it). */
  onReject?: () => void;
}

/**
 * The /predict route: readiness, then a place in the bounded queue, then the
 * body (bounded while it streams), then decode and inference.
 */
export function predictRoutes(state: ServerState, options: PredictOptions): Hono {
  const { maxPixels, maxQueue = 32, onReject } = options;
  return new Hono().post(
    "/",
    async function ready(c, next) {
      if (!state.classifier) return errorResponse(c, "not_ready", notReadyMessage(state));
      await next();
    },
    admission({ capacity: maxQueue, onReject }),
    bodyLimit({ maxBytes: options.maxBodyBytes }),
    async (c) => {
      // CPU time of the whole process while this request reads, decodes and runs: what edge
      // platforms bill against their per-request budget (concurrent requests count in each other's).
      const cpuStart = processCpuMs();
      const classifier = state.classifier!;
      const { bytes, topK } = await readImageRequest(c.req.raw);
      const k = parseTopK(c.req.query("top_k") ?? topK, classifier.classes);
      try {
        const result = await classifier.classify(bytes, k, { maxPixels, signal: requestSignal(c) });
        setTimings(c, result.timings_ms);
        const cpu = Math.round((processCpuMs() - cpuStart) * 100) / 100;
        c.header("x-cpu-time-ms", String(cpu));
        return c.json({ ...result, timings_ms: { ...result.timings_ms, cpu } });
      } catch (e) {
        // A backend with its own bound (createWasmBackend's maxQueue) refuses the same way.
        if (!(e instanceof QueueFullError)) throw e;
        onReject?.();
        return unavailable(c, "overloaded", "Cannot classify now: the inference queue is full", 1);
      }
    },
  );
}
