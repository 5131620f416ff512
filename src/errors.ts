/**
 * Errors users can act on. Every module throws {@linkcode ClassifierError}
 * with a stable `code`; the HTTP layer maps the code to a status and a JSON
 * body, the CLI prints the message. Nothing else ever reaches a client.
 *
 * @module
 */

/** Stable machine-readable error codes, as they appear in `{ error: { code } }`. */
export type ErrorCode =
  | "bad_request"
  | "payload_too_large"
  | "unsupported_media_type"
  | "decode_failed"
  | "not_ready"
  | "not_found"
  | "request_timeout"
  | "overloaded"
  | "timeout"
  | "model_invalid"
  | "internal";

/** HTTP status for each error code. */
export const ERROR_STATUS: Readonly<
  Record<ErrorCode, 400 | 404 | 408 | 413 | 415 | 422 | 500 | 503>
> = {
  bad_request: 400,
  payload_too_large: 413,
  unsupported_media_type: 415,
  decode_failed: 422,
  not_ready: 503,
  not_found: 404,
  // The body did not arrive in time (--body-idle-timeout, --body-read-timeout).
  request_timeout: 408,
  // The shared queue (--max-queue) is full, or the deadline (--request-timeout) passed.
  overloaded: 503,
  timeout: 503,
  model_invalid: 500,
  internal: 500,
};

/**
 * An error whose message is safe to show a user: sentence case, action first
 * ("Cannot decode image: PNG header is truncated").
 *
 * @example
 * ```ts
 * throw new ClassifierError("decode_failed", "Cannot decode image: JPEG data is truncated");
 * ```
 */
export class ClassifierError extends Error {
  /** Stable code, see {@linkcode ErrorCode}. */
  readonly code: ErrorCode;

  /** Creates an error with a code and a user-facing message. */
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ClassifierError";
    this.code = code;
  }

  /** The HTTP status this error maps to. */
  get status(): number {
    return ERROR_STATUS[this.code];
  }
}
