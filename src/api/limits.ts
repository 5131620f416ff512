/**
 * Limits that keep one client, or many, from taking the server down:
 *
 * - {@linkcode bodyLimit}: the body is counted while it streams in and the
 *   request refused (413) the moment it passes the limit. Content-Length is
 *   used only to refuse early, never trusted as the size (Hono's bodyLimit
 *   trusts it), so a lying or missing header is still bounded.
 * - {@linkcode requestTimeout}: an answer within a deadline, else 503
 *   `timeout` with Retry-After; the work behind it is told to stop through
 *   {@linkcode requestSignal}.
 * - {@linkcode admission}: at most `capacity` requests in the pipeline
 *   (reading, decoding, waiting for or running inference); one more is
 *   answered 503 `overloaded` with Retry-After at once, and counted.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { ClassifierError } from "../errors.ts";
import { requestIdOf } from "./request_id.ts";

/** Codes of the answers these limits give, beside those of `src/errors.ts`. */
export type LimitErrorCode = "overloaded" | "timeout";

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
 * The signal that aborts when this request's deadline passes; work for the
 * request checks it between stages. Undefined in an app without
 * {@linkcode requestTimeout}.
 *
 * @example
 * ```ts
 * const result = await classifier.classify(bytes, k, { signal: requestSignal(c) });
 * ```
 */
export function requestSignal(c: Context): AbortSignal | undefined {
  return (c.var as LimitVariables).requestSignal;
}

/** Options of {@linkcode bodyLimit}. */
export interface BodyLimitOptions {
  /** Largest body in bytes. */
  maxBytes: number;
}

/**
 * Reads a body stream into memory, never past `maxBytes`: throws a 413
 * `ClassifierError` as soon as one byte more arrives, and the signal's reason
 * if it aborts first; either way the stream is cancelled.
 */
export async function readBounded(
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
  options: { sizeHint?: number; signal?: AbortSignal } = {},
): Promise<Uint8Array> {
  const { signal } = options;
  signal?.throwIfAborted();
  const reader = body.getReader();
  const onAbort = () => reader.cancel(signal?.reason).catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  let buffer = new Uint8Array(Math.min(maxBytes, options.sizeHint ?? 64 * 1024));
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      signal?.throwIfAborted();
      if (done) break;
      if (size + value.length > maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge(maxBytes);
      }
      if (size + value.length > buffer.length) {
        const grown = new Uint8Array(
          Math.min(maxBytes, Math.max(size + value.length, buffer.length * 2)),
        );
        grown.set(buffer.subarray(0, size));
        buffer = grown;
      }
      buffer.set(value, size);
      size += value.length;
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    reader.releaseLock();
  }
  return buffer.subarray(0, size);
}

function tooLarge(maxBytes: number): ClassifierError {
  const mb = (maxBytes / 1024 / 1024).toFixed(1);
  return new ClassifierError(
    "payload_too_large",
    `Cannot accept the request: the body is over ${mb} MB`,
  );
}

/**
 * Middleware bounding the request body while it streams; the handler then
 * reads the buffered body as usual.
 *
 * @example
 * ```ts
 * app.post("/predict", bodyLimit({ maxBytes: 10 * 1024 * 1024 }), handler);
 * ```
 */
export function bodyLimit(options: BodyLimitOptions): MiddlewareHandler {
  const { maxBytes } = options;
  return async function bodyLimit(c, next) {
    const body = c.req.raw.body;
    if (!body) return await next();
    const header = c.req.header("content-length")?.trim();
    const declared = header && /^\d+$/.test(header) ? Number(header) : undefined;
    if (declared !== undefined && declared > maxBytes) throw tooLarge(maxBytes);
    const bytes = await readBounded(body, maxBytes, {
      sizeHint: declared,
      signal: requestSignal(c),
    });
    const headers = new Headers(c.req.raw.headers);
    headers.set("content-length", String(bytes.length));
    headers.delete("transfer-encoding");
    c.req.raw = new Request(c.req.raw, { body: bytes as BodyInit, headers });
    await next();
  };
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
    // Only the deadline: Deno.serve's request.signal also aborts after every successful answer
    // (its legacy behaviour, with a warning), so it cannot tell a client that went away.
    const deadline = new AbortController();
    c.set("requestSignal", deadline.signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<"expired">((resolve) => {
      timer = setTimeout(() => resolve("expired"), ms);
    });
    const work = next();
    try {
      if (await Promise.race([work, expired]) !== "expired") return;
    } finally {
      clearTimeout(timer);
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

/** Options of {@linkcode admission}. */
export interface AdmissionOptions {
  /** Most requests in the pipeline at once. */
  capacity: number;
  /** Retry-After of a refusal, in seconds (default 1). */
  retryAfterSeconds?: number;
  /** Called for each refusal (the metrics count it). */
  onReject?: () => void;
}

/**
 * Middleware letting at most `capacity` requests through at once; the rest
 * get 503 `overloaded` with Retry-After without their bodies being read. A
 * request holds its place until its handler has finished, even when a
 * timeout has already answered it.
 *
 * @example
 * ```ts
 * app.post("/predict", admission({ capacity: 32, onReject: () => metrics.rejections.inc() }), handler);
 * ```
 */
export function admission(options: AdmissionOptions): MiddlewareHandler {
  const { capacity, retryAfterSeconds = 1, onReject } = options;
  let inFlight = 0;
  return async function admission(c, next) {
    if (inFlight >= capacity) {
      onReject?.();
      return unavailable(
        c,
        "overloaded",
        `Cannot classify now: ${capacity} requests are already queued; retry in ${retryAfterSeconds} s`,
        retryAfterSeconds,
      );
    }
    inFlight++;
    try {
      await next();
    } finally {
      inFlight--;
    }
  };
}
