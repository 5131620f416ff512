/**
 * The HTTP API.
 *
 * @module
 */
export { type AppOptions, createApp } from "./app.ts";
export { type ErrorBody, errorResponse } from "./errors.ts";
export type { ServerState } from "./state.ts";
