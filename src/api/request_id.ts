/**
 * A request id on every answer: Hono's built-in request-id middleware keeps a
 * valid incoming `X-Request-Id` (at most 255 characters of `A-Z a-z 0-9 _ - =`)
 * and otherwise makes a random UUID; the id is answered in the same header,
 * echoed in error bodies and written in the request log line.
 *
 * @module
 */
import type { Context } from "hono";
import { requestId, type RequestIdVariables } from "hono/request-id";

export { requestId, type RequestIdVariables };

/** The header carrying the id, both ways. */
export const REQUEST_ID_HEADER = "X-Request-Id";

/**
 * The id {@linkcode requestId} gave this request; undefined in an app
 * without the middleware.
 *
 * @example
 * ```ts
 * app.use(requestId());
 * app.get("/", (c) => c.text(requestIdOf(c) ?? "none"));
 * ```
 */
export function requestIdOf(c: Context): string | undefined {
  return (c.var as Partial<RequestIdVariables>).requestId;
}
