/**
 * Reads a request body into memory within three bounds decided before the
 * first byte: a size (413 the moment one byte more arrives; Content-Length
 * only refuses early, it is never trusted as the size), a longest pause
 * between chunks and a deadline for the whole body (408 for either, so a
 * slow client frees what it holds after a few seconds, not after the
 * inference deadline). The stream is cancelled whichever bound ends it.
 *
 * @module
 */
import { ClassifierError } from "../errors.ts";

/** Options of {@linkcode readBody}. */
export interface ReadBodyOptions {
  /** Largest body in bytes. */
  maxBytes: number;
  /** Longest wait for the next chunk, in ms. */
  idleMs: number;
  /** Longest time to read the whole body, in ms. */
  totalMs: number;
  /** Content-Length as sent, to refuse early and size the buffer (never trusted as the size). */
  declared?: number;
  /** Aborts the read with its reason (the request's deadline, a client that left). */
  signal?: AbortSignal;
  /** Sees each chunk as it arrives; what it throws ends the read (a route's streaming check). */
  onChunk?: (chunk: Uint8Array) => void;
}

/** The 413 of a body over `maxBytes`. */
export function tooLarge(maxBytes: number): ClassifierError {
  const mb = (maxBytes / 1024 / 1024).toFixed(1);
  return new ClassifierError(
    "payload_too_large",
    `Cannot accept the request: the body is over ${mb} MB`,
  );
}

function tooSlow(what: string): ClassifierError {
  return new ClassifierError(
    "request_timeout",
    `Cannot read the request: ${what}; send the whole body at once and retry`,
  );
}

/**
 * Reads `body` whole, or throws: 413 over `maxBytes`, 408 when a chunk or
 * the whole body is late, the signal's reason when it aborts.
 *
 * @example
 * ```ts
 * const bytes = await readBody(request.body!, { maxBytes: 10 << 20, idleMs: 2000, totalMs: 5000 });
 * ```
 */
export async function readBody(
  body: ReadableStream<Uint8Array>,
  options: ReadBodyOptions,
): Promise<Uint8Array> {
  const { maxBytes, idleMs, totalMs, declared, signal, onChunk } = options;
  signal?.throwIfAborted();
  if (declared !== undefined && declared > maxBytes) throw tooLarge(maxBytes);
  const reader = body.getReader();
  const stop = new AbortController();
  const cancel = (reason: unknown) => {
    stop.abort(reason);
    reader.cancel(reason).catch(() => {});
  };
  const onAbort = () => cancel(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const total = setTimeout(
    () => cancel(tooSlow(`the body took over ${seconds(totalMs)}`)),
    totalMs,
  );
  let idle: ReturnType<typeof setTimeout> | undefined;
  let buffer = new Uint8Array(Math.min(maxBytes, declared ?? 64 * 1024));
  let size = 0;
  try {
    for (;;) {
      idle = setTimeout(() => cancel(tooSlow(`no data for ${seconds(idleMs)}`)), idleMs);
      const { done, value } = await reader.read().catch((e) => {
        throw stop.signal.aborted ? stop.signal.reason : e;
      });
      clearTimeout(idle);
      stop.signal.throwIfAborted();
      if (done) break;
      if (size + value.length > maxBytes) {
        cancel(tooLarge(maxBytes));
        throw tooLarge(maxBytes);
      }
      try {
        onChunk?.(value);
      } catch (e) {
        cancel(e);
        throw e;
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
    clearTimeout(idle);
    clearTimeout(total);
    signal?.removeEventListener("abort", onAbort);
    reader.releaseLock();
  }
  return buffer.subarray(0, size);
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
