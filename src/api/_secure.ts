/**
 * Response headers that make browsers hold the page and the API to what they
 * need: Hono's secure-headers with a Content-Security-Policy that allows the
 * upload page (its own script and stylesheet, `blob:`/`data:` previews, calls
 * to its own origin) and nothing else; and CORS, off unless origins are
 * configured (--cors-origin).
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import { REQUEST_ID_HEADER } from "./request_id.ts";

/** The page's Content-Security-Policy, directive by directive. */
export const CONTENT_SECURITY_POLICY = {
  defaultSrc: ["'self'"],
  // wasm-unsafe-eval lets the page compile onnxruntime-web's WebAssembly (not JS eval).
  scriptSrc: ["'self'", "'wasm-unsafe-eval'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", "blob:", "data:"],
  connectSrc: ["'self'"],
  fontSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'self'"],
} as const;

/**
 * Middleware adding the security headers (CSP, nosniff, frame and referrer
 * policies, HSTS, ...) to every answer, errors included.
 *
 * @example
 * ```ts
 * app.use(securityHeaders());
 * ```
 */
export function securityHeaders(): MiddlewareHandler {
  const csp = Object.fromEntries(
    Object.entries(CONTENT_SECURITY_POLICY).map(([k, v]) => [k, [...v]]),
  );
  return secureHeaders({ contentSecurityPolicy: csp, referrerPolicy: "same-origin" });
}

/** KServe v2's binary tensor extension: the JSON header's length, on requests and answers. */
export const BINARY_HEADER_LENGTH = "Inference-Header-Content-Length";

/**
 * Middleware answering CORS for `origins` (`["*"]` for any); none are allowed
 * unless configured. Only the methods and headers the API uses are allowed
 * (with {@linkcode BINARY_HEADER_LENGTH}, so pages can send binary tensors);
 * the request id, Retry-After and the binary header length are readable by
 * the calling page.
 *
 * @example
 * ```ts
 * app.use(corsPolicy(["https://app.example"]));
 * ```
 */
export function corsPolicy(origins: readonly string[]): MiddlewareHandler {
  return cors({
    origin: origins.includes("*") ? "*" : [...origins],
    allowMethods: ["GET", "POST", "OPTIONS"],
    allowHeaders: ["Content-Type", REQUEST_ID_HEADER, BINARY_HEADER_LENGTH],
    exposeHeaders: [REQUEST_ID_HEADER, "Retry-After", BINARY_HEADER_LENGTH],
    maxAge: 600,
  });
}
