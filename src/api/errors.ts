/**
 * Every error a client sees is JSON `{ error: { code, message, request_id } }`
 * with the status its code maps to; anything unexpected is answered as a
 * plain 500 without details (the request log line carries the error).
 *
 * @module
 */
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { ClassifierError, ERROR_STATUS, type ErrorCode } from "../errors.ts";
import { RetryLaterError } from "./limits.ts";
import { setRouteLabel } from "./metrics.ts";
import { requestIdOf } from "./request_id.ts";

/** The JSON body of every error answer. */
export interface ErrorBody {
  /** `request_id` is the request's X-Request-Id, for the user to quote; absent without that middleware. */
  error: { code: ErrorCode; message: string; request_id?: string };
}

/**
 * Builds an error answer.
 *
 * @example
 * ```ts
 * return errorResponse(c, "not_ready", "Cannot classify yet: the model is still loading");
 * ```
 */
export function errorResponse(c: Context, code: ErrorCode, message: string): Response {
  const body: ErrorBody = { error: { code, message, request_id: requestIdOf(c) } };
  return c.json(body, ERROR_STATUS[code]);
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: "bad_request",
  404: "not_found",
  408: "request_timeout",
  413: "payload_too_large",
  415: "unsupported_media_type",
  422: "decode_failed",
  503: "not_ready",
};

/** Hono error handler: known errors keep their code and message, the rest become a bare 500. */
export const onError: ErrorHandler = (err, c) => {
  if (err instanceof RetryLaterError) c.header("Retry-After", String(err.retryAfterSeconds));
  if (err instanceof ClassifierError) return errorResponse(c, err.code, err.message);
  if (err instanceof HTTPException && CODE_BY_STATUS[err.status]) {
    return errorResponse(
      c,
      CODE_BY_STATUS[err.status],
      err.message || "Cannot process the request",
    );
  }
  return errorResponse(c, "internal", "Cannot complete the request: internal error");
};

/** Hono not-found handler; the metrics label such requests "not_found", not by path. */
export const notFound: NotFoundHandler = (c) => {
  setRouteLabel(c, "not_found");
  return errorResponse(c, "not_found", `Cannot find ${c.req.method} ${c.req.path}`);
};
