/**
 * The deadline of every request: {@linkcode requestTimeout} answers 503
 * `timeout` with Retry-After when the rest of the chain is late, and
 * {@linkcode requestSignal} tells the work behind it to stop, at the deadline
 * or as soon as the client goes away. The other bounds of a request (body,
 * queue, budgets) are the request pipeline's (`pipeline.ts`).
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { ClassifierError } from "../errors.ts";
import { requestIdOf } from "./request_id.ts";

/** Codes of the 503s these limits give (in `src/errors.ts`). */
export type LimitErrorCode = "overloaded" | "timeout";

/**
 * A 503 the client should retry after `retryAfterSeconds`; the error
 * handlers add the Retry-After header.
 *
 * @example
 * ```ts
 * throw new RetryLaterError("overloaded", "Cannot classify now: the server is busy; retry in 1 s", 1);
 * ```
 */
export class RetryLaterError extends ClassifierError {
  /** Seconds to wait before retrying. */
  readonly retryAfterSeconds: number;

  /** Creates the error with its code, user-facing message and Retry-After. */
  constructor(code: LimitErrorCode, message: string, retryAfterSeconds: number) {
    super(code, message);
    this.name = "RetryLaterError";
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Why the request's signal aborted when its client closed the connection first. */
export class ClientGoneError extends DOMException {
  /** Creates the reason. */
  constructor() {
    super("The client closed the connection", "AbortError");
  }
}

interface LimitVariables {
  requestSignal?: AbortSignal;
}

/**
 * Answers 503 with Retry-After and the usual error body.
 *
 * @example
 * ```ts
 * return unavailable(c, "overloaded", "Cannot classify now: the server is busy; retry shortly", 1);
 * ```
 */
export function unavailable(
  c: Context,
  code: LimitErrorCode,
  message: string,
  retryAfterSeconds: number,
): Response {
  c.header("Retry-After", String(retryAfterSeconds));
  return c.json({ error: { code, message, request_id: requestIdOf(c) } }, 503);
}

/**
 * The signal that aborts when this request's deadline passes or its client
 * goes away (reason {@linkcode ClientGoneError}); work for the request checks
 * it between stages, and work still queued leaves its queue. Undefined in an
 * app without {@linkcode requestTimeout}.
 *
 * @example
 * ```ts
 * const result = await classifier.classify(bytes, k, { signal: requestSignal(c) });
 * ```
 */
export function requestSignal(c: Context): AbortSignal | undefined {
  return (c.var as LimitVariables).requestSignal;
}

/** Options of {@linkcode requestTimeout}. */
export interface RequestTimeoutOptions {
  /** Deadline in milliseconds from the request's arrival. */
  ms: number;
}

/**
 * Middleware answering 503 `timeout` (with Retry-After) when the rest of the
 * chain has not answered within `ms`, and aborting {@linkcode requestSignal}
 * so that the work stops at its next check. What still runs (an inference
 * already started) finishes and is dropped; limits behind this middleware
 * count it until then.
 *
 * @example
 * ```ts
 * app.use(requestTimeout({ ms: 30_000 }));
 * ```
 */
export function requestTimeout(options: RequestTimeoutOptions): MiddlewareHandler {
  const { ms } = options;
  const seconds = Math.max(1, Math.round(ms / 1000));
  return async function requestTimeout(c, next) {
    const deadline = new AbortController();
    c.set("requestSignal", deadline.signal);
    // A client that leaves aborts the work too. Deno.serve's legacy request.signal also aborts
    // after every answer (deno.json opts out with "no-legacy-abort"); the listener is gone by then.
    const client = c.req.raw.signal;
    const left = () => deadline.abort(new ClientGoneError());
    client.addEventListener("abort", left, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<"expired">((resolve) => {
      timer = setTimeout(() => resolve("expired"), ms);
    });
    const work = next();
    try {
      if (await Promise.race([work, expired]) !== "expired") return;
    } finally {
      clearTimeout(timer);
      client.removeEventListener("abort", left);
    }
    const response = unavailable(
      c,
      "timeout",
      `Cannot answer in time: the request took over ${seconds} s; retry later`,
      seconds,
    );
    c.res = response;
    // Abort only once this answer is on its way: the work then fails at once, and the error
    // answer Hono makes of that would otherwise replace this one.
    setTimeout(() => deadline.abort(new DOMException("The deadline passed", "TimeoutError")), 0);
    work.catch(() => {}); // it settles later, unobserved
    return response;
  };
}
