/**
 * `POST /predict`: classify one image, through the request pipeline
 * (`pipeline.ts`): the body (raw, multipart or base64 JSON) is read and
 * parsed, the request admitted, and the classifier decodes, preprocesses and
 * runs it in one call (in its Worker where it has one).
 *
 * @module
 */
import { Hono } from "hono";
import type { Classification } from "../classify/mod.ts";
import { processCpuMs } from "../platform/mod.ts";
import { errorResponse } from "./errors.ts";
import { notReadyMessage } from "./health.ts";
import { setTimings } from "./metrics.ts";
import type { Pipeline, Steps } from "./pipeline.ts";
import type { ServerState } from "./state.ts";
import { parseTopK, readImageBody } from "./_image_request.ts";

/** A parsed /predict request. */
interface Predict {
  bytes: Uint8Array;
  k: number;
  /** Process CPU ms when the request was read. */
  cpuStart: number;
}

const steps: Steps<Predict, Predict, Classification> = {
  async parse(body, c, { classifier }) {
    // CPU time of the whole process while this request reads, decodes and runs: what edge
    // platforms bill against their per-request budget (concurrent requests count in each other's).
    const cpuStart = processCpuMs();
    const { bytes, topK } = await readImageBody(body, c.req.raw);
    return { bytes, k: parseTopK(c.req.query("top_k") ?? topK, classifier.classes), cpuStart };
  },
  prepare: (request) => request, // the classifier decodes where it runs the model
  run: ({ bytes, k }, { classifier, maxPixels, signal }) =>
    classifier.classify(bytes, k, { maxPixels, signal }),
  answer(result, c, { cpuStart }) {
    setTimings(c, result.timings_ms);
    const cpu = Math.round((processCpuMs() - cpuStart) * 100) / 100;
    c.header("x-cpu-time-ms", String(cpu));
    return c.json({ ...result, timings_ms: { ...result.timings_ms, cpu } });
  },
};

/**
 * The /predict route: readiness, then the request pipeline.
 *
 * @example
 * ```ts
 * app.route("/predict", predictRoutes(state, new Pipeline({ maxQueue: 32 })));
 * ```
 */
export function predictRoutes(state: ServerState, pipeline: Pipeline): Hono {
  return new Hono().post("/", (c) => {
    const classifier = state.classifier;
    if (!classifier) return errorResponse(c, "not_ready", notReadyMessage(state));
    return pipeline.handle(c, classifier, steps);
  });
}
