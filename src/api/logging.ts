/**
 * One JSON log line per request: method, path, status, duration, bytes in,
 * model, backend and request id, at info level; 503 (not ready) at warn; other
 * answers of 500 and above at error, with the error behind them: the details
 * a client never sees.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Logger } from "../log.ts";
import { requestIdOf } from "./request_id.ts";
import type { ServerState } from "./state.ts";

/** Options of {@linkcode requestLog}. */
export interface RequestLogOptions {
  /** Where the lines go. */
  logger: Logger;
  /** Server state, for the model and backend fields (null while loading). */
  state?: ServerState;
}

/**
 * Counts the request body's bytes as the app reads them when it has no
 * Content-Length (a streamed upload); returns the count so far.
 */
function bytesIn(c: Context): () => number {
  const declared = c.req.header("content-length");
  if (declared !== undefined && /^\d+$/.test(declared)) return () => Number(declared);
  const body = c.req.raw.body;
  if (!body) return () => 0;
  let count = 0;
  const counted = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        count += chunk.byteLength;
        controller.enqueue(chunk);
      },
    }),
  );
  c.req.raw = new Request(c.req.raw, { body: counted });
  return () => count;
}

/**
 * Middleware writing one line per answered request.
 *
 * @example
 * ```ts
 * app.use(requestId());
 * app.use(requestLog({ logger: createLogger({ level: "info" }), state }));
 * // {"time":"…","level":"info","msg":"request","method":"POST","path":"/predict","status":200,
 * //  "duration_ms":51.8,"bytes_in":24713,"model":"alexnet-synthetic","backend":"wasm","request_id":"…"}
 * ```
 */
export function requestLog(options: RequestLogOptions): MiddlewareHandler {
  const { logger, state } = options;
  return async function requestLog(c, next) {
    const start = performance.now();
    const bytes = bytesIn(c);
    await next();
    const status = c.res.status;
    const level = status < 500 ? "info" : status === 503 ? "warn" : "error";
    if (!logger.enabled(level)) return;
    const info = state?.classifier?.info;
    logger.log(level, "request", {
      method: c.req.method,
      path: c.req.path,
      status,
      duration_ms: Math.round((performance.now() - start) * 100) / 100,
      bytes_in: bytes(),
      model: info?.name ?? null,
      backend: info?.backend.name ?? null,
      request_id: requestIdOf(c) ?? null,
      ...(status >= 500 && c.error ? { error: c.error } : {}),
    });
  };
}
