/**
 * The HTTP API.
 *
 * @module
 */
export { type AppOptions, createApp } from "./app.ts";
export { type ErrorBody, errorResponse } from "./errors.ts";
export type { ServerState } from "./state.ts";
export {
  createLogger,
  LOG_LEVELS,
  type Logger,
  type LoggerOptions,
  type LogLevel,
} from "../log.ts";
export { ServerMetrics } from "./metrics.ts";
export { type Job, Pipeline, type PipelineOptions, type Steps } from "./pipeline.ts";
export { REQUEST_ID_HEADER } from "./request_id.ts";
