/**
 * Fetching a model into memory at cold start, for platforms whose code size
 * is capped (20 MB on Netlify and Supabase) and whose filesystem is read-only:
 * the bytes are streamed into one buffer of the pinned size while hashed, and
 * kept only if size and sha256 are the pinned ones. Nothing is written. The
 * sources are tried in order, as `deno task model:fetch` tries its mirrors.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { formatBytes, ModelFetchError, networkReason, type SourceFailure } from "./download.ts";

/** Options of {@linkcode fetchModelBytes}. */
export interface FetchBytesOptions {
  /** Lower-case hex sha256 the bytes must have. */
  sha256: string;
  /** Size in bytes, when known (a zoo pin); else the response's Content-Length decides. */
  bytes?: number;
  /** The fetch to use (tests pass one that only reaches loopback). */
  fetch?: typeof fetch;
  /** How long to wait for each source's response headers (default 30 s). */
  headersTimeoutMs?: number;
  /** Largest size accepted when the size is not pinned (default 1 GiB). */
  maxBytes?: number;
  /** Status lines. */
  log?: (line: string) => void;
}

type Try = { ok: true; bytes: Uint8Array } | { ok: false; failure: SourceFailure };

async function fromSource(source: string, o: FetchBytesOptions): Promise<Try> {
  const fail = (reason: string, extra: Partial<SourceFailure> = {}): Try => ({
    ok: false,
    failure: { source, reason, unreachable: false, mismatch: false, ...extra },
  });
  const abort = new AbortController();
  const timeoutMs = o.headersTimeoutMs ?? 30_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort(new DOMException("headers timeout", "TimeoutError"));
  }, timeoutMs);
  let res: Response;
  try {
    res = await (o.fetch ?? fetch)(source, { signal: abort.signal });
  } catch (e) {
    return fail(networkReason(e, timedOut, timeoutMs), { unreachable: true });
  } finally {
    clearTimeout(timer);
  }
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel().catch(() => {});
    return fail(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`);
  }
  const header = res.headers.get("content-length");
  const length = header === null ? undefined : Number(header);
  const size = o.bytes ?? length;
  if (size === undefined || !Number.isSafeInteger(size) || size <= 0) {
    await res.body.cancel().catch(() => {});
    return fail("no Content-Length and no pinned size");
  }
  if (
    (o.bytes !== undefined && length !== undefined && length !== o.bytes) ||
    size > (o.maxBytes ?? 1024 ** 3)
  ) {
    await res.body.cancel().catch(() => {});
    return fail(`size ${length ?? size} bytes, expected ${o.bytes ?? "at most " + o.maxBytes}`, {
      mismatch: true,
    });
  }
  // One buffer of the final size, read into in place (a BYOB reader): no growing copies of a
  // 60-244 MB model, and no chunk per read for the collector to find later (the chunks of a
  // 61 MB body were about 50 MB of an edge isolate's peak).
  const hash = createHash("sha256");
  let buffer: ArrayBuffer = new ArrayBuffer(size);
  let received = 0;
  try {
    const reader = res.body.getReader({ mode: "byob" });
    while (received < size) {
      const { done, value } = await reader.read(new Uint8Array(buffer, received, size - received));
      if (done || !value) break;
      buffer = value.buffer as ArrayBuffer; // the read moves the buffer; this is it again
      hash.update(value);
      received += value.byteLength;
    }
    if (received === size && !(await reader.read(new Uint8Array(1))).done) {
      await reader.cancel().catch(() => {});
      return fail(`more than the expected ${size} bytes`, { mismatch: true });
    }
  } catch (e) {
    return fail(`connection dropped after ${formatBytes(received)} (${(e as Error).message})`);
  }
  if (received !== size) {
    return fail(`connection dropped after ${formatBytes(received)} of ${formatBytes(size)}`);
  }
  const got = hash.digest("hex");
  if (got !== o.sha256) {
    return fail(`sha256 mismatch: got ${got}, expected ${o.sha256}`, { mismatch: true });
  }
  return { ok: true, bytes: new Uint8Array(buffer) };
}

/**
 * Downloads a model into memory from the first source that serves the pinned
 * bytes.
 *
 * @throws {TypeError} When `sha256` is not 64 hex digits.
 * @throws {ModelFetchError} When no source served them (`offline`,
 * `mismatch`, `mirrors_failed`), each source listed with why.
 *
 * @example
 * ```ts
 * const bytes = await fetchModelBytes(["https://models.example/alexnet.onnx"], {
 *   sha256: "d53bbedf100be79277cf55d78c72bdcb67d88786988561bf5d530f038e443c7b",
 * });
 * ```
 */
export async function fetchModelBytes(
  sources: readonly string[],
  options: FetchBytesOptions,
): Promise<Uint8Array> {
  if (!/^[0-9a-f]{64}$/.test(options.sha256)) {
    throw new TypeError(
      `Cannot verify the model: expected a sha256 of 64 lower-case hex digits, got "${options.sha256}"`,
    );
  }
  const failures: SourceFailure[] = [];
  for (const source of sources) {
    const started = performance.now();
    const got = await fromSource(source, options);
    if (got.ok) {
      options.log?.(
        `Fetched ${formatBytes(got.bytes.length)} from ${source} in ` +
          `${Math.round(performance.now() - started)} ms (sha256 verified)`,
      );
      return got.bytes;
    }
    options.log?.(`${source}: ${got.failure.reason}`);
    failures.push(got.failure);
  }
  const list = failures.map((f, i) => `\n  ${i + 1}. ${f.source}: ${f.reason}`).join("");
  if (failures.length === 0) {
    throw new ModelFetchError("mirrors_failed", "Cannot fetch the model: no URL to fetch it from");
  }
  if (failures.every((f) => f.unreachable)) {
    throw new ModelFetchError(
      "offline",
      `Cannot fetch the model: no source could be reached:${list}`,
      failures,
    );
  }
  if (failures.every((f) => f.mismatch)) {
    throw new ModelFetchError(
      "mismatch",
      `Cannot use the model: no source served the pinned bytes (size or sha256 differ):${list}`,
      failures,
    );
  }
  throw new ModelFetchError(
    "mirrors_failed",
    `Cannot fetch the model: every source failed:${list}`,
    failures,
  );
}
