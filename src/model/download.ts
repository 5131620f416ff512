/**
 * Downloading one pinned file: try each source in order, stream into a
 * `.partial` file beside the destination while hashing, resume it with an
 * HTTP Range request after a dropped connection (or from an earlier run),
 * check size and sha256, then rename it into place. The sha256 decides,
 * never the URL: a source serving other bytes is skipped and its bytes are
 * deleted.
 *
 * Sources are http(s) URLs or file: URLs (a local copy).
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { fileURLToPath } from "node:url";

/** What the file must be. */
export interface Pin {
  /** Size in bytes. */
  bytes: number;
  /** Lower-case hex sha256. */
  sha256: string;
}

/** Progress of a download, reported for every chunk. */
export interface DownloadProgress {
  /** Bytes in the partial file so far (resumed bytes included). */
  received: number;
  /** Bytes expected in all. */
  total: number;
  /** The source being read. */
  source: string;
  /** Bytes already there when this source started (0 for a fresh start). */
  resumedFrom: number;
}

/** Why one source was given up. */
export interface SourceFailure {
  source: string;
  /** What went wrong, e.g. "HTTP 404 Not Found" or "connection refused". */
  reason: string;
  /** No HTTP answer at all (refused, DNS, timeout). */
  unreachable: boolean;
  /** The source answered with other bytes than the pinned ones. */
  mismatch: boolean;
}

/** The kind of a {@linkcode ModelFetchError}. */
export type ModelFetchErrorKind =
  /** No source could be reached: no network, or every host is down. */
  | "offline"
  /** Every source failed, for different reasons. */
  | "mirrors_failed"
  /** Every source that answered served other bytes; they were deleted. */
  | "mismatch"
  /** The disk filled up while writing; the partial file is kept for resuming. */
  | "disk_full"
  /** The partial file could not be written for another reason. */
  | "write_failed";

/**
 * A download that could not finish; the message says what to do, `failures`
 * lists each source with its status.
 *
 * @example
 * ```ts
 * try {
 *   await download(["https://example.com/m.onnx"], dest, { pin });
 * } catch (e) {
 *   if (e instanceof ModelFetchError && e.kind === "offline") console.error(e.message);
 * }
 * ```
 */
export class ModelFetchError extends Error {
  /** What went wrong overall. */
  readonly kind: ModelFetchErrorKind;
  /** Each source tried, in order, with why it failed. */
  readonly failures: SourceFailure[];

  /** Creates the error. */
  constructor(kind: ModelFetchErrorKind, message: string, failures: SourceFailure[] = []) {
    super(message);
    this.name = "ModelFetchError";
    this.kind = kind;
    this.failures = failures;
  }
}

/** Options of {@linkcode download}. */
export interface DownloadOptions {
  /** Size and sha256 the file must have. */
  pin: Pin;
  /** The fetch to use (tests pass one that only reaches loopback). */
  fetch?: typeof fetch;
  /** How long to wait for a source's response headers (default 30 s). */
  headersTimeoutMs?: number;
  /** Give up on a source sending nothing for this long (default 60 s), then resume. */
  idleTimeoutMs?: number;
  /** Extra tries per source after a dropped connection, each resuming (default 2). */
  retries?: number;
  /** Called for every chunk written. */
  onProgress?: (progress: DownloadProgress) => void;
  /** Called when a source fails, before the next try. */
  onFailure?: (failure: SourceFailure) => void;
  /** Cancels the download (the partial file is kept). */
  signal?: AbortSignal;
}

/** What {@linkcode download} did. */
export interface DownloadResult {
  /** The source the last bytes came from ("(partial file)" if none were needed). */
  source: string;
  /** Bytes that were already in the partial file when that source started. */
  resumedFrom: number;
  /** Sources given up before it. */
  failures: SourceFailure[];
}

type Attempt =
  | { ok: true; source: string; resumedFrom: number }
  | {
    ok: false;
    reason: string;
    unreachable?: boolean;
    mismatch?: boolean;
    /** "resume": try again from the partial file; "restart": once more from 0; "next": give up. */
    then: "resume" | "restart" | "next";
  };

const MB = 1024 * 1024;

/** "27.4 MB" */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < MB) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / MB).toFixed(1)} MB`;
}

async function fileSize(url: URL): Promise<number> {
  try {
    return (await Deno.stat(url)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

async function removeIfThere(url: URL): Promise<void> {
  await Deno.remove(url).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

/** Feeds the first `length` bytes of a file to `hash`. */
async function hashPrefix(url: URL, length: number, hash: Hash): Promise<void> {
  using file = await Deno.open(url, { read: true });
  const buf = new Uint8Array(4 * MB);
  let left = length;
  while (left > 0) {
    const n = await file.read(buf.subarray(0, Math.min(buf.length, left)));
    if (n === null) {
      throw new RangeError(`Cannot hash ${url.pathname}: it is shorter than ${length}`);
    }
    hash.update(buf.subarray(0, n));
    left -= n;
  }
}

/** The sha256 of a whole file, lower-case hex. */
export async function sha256File(url: URL): Promise<string> {
  const hash = createHash("sha256");
  await hashPrefix(url, await fileSize(url), hash);
  return hash.digest("hex");
}

/** A short reason for a fetch that threw before any response. */
export function networkReason(e: unknown, timedOut: boolean, timeoutMs: number): string {
  if (timedOut) return `no answer within ${timeoutMs / 1000} s`;
  const err = e as { message?: string; cause?: { message?: string } };
  const text = `${err?.message ?? e} ${err?.cause?.message ?? ""}`;
  if (/refused/i.test(text)) return "connection refused";
  if (/dns|lookup|resolve|name or service|nodename/i.test(text)) return "host not found (DNS)";
  if (/reset/i.test(text)) return "connection reset";
  if (/unreachable/i.test(text)) return "network unreachable";
  if (/certificate|tls|ssl/i.test(text)) return `TLS error (${text.trim().slice(0, 160)})`;
  return text.trim().split("\n")[0].slice(0, 200);
}

function isDiskFull(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === "ENOSPC" || /no space left/i.test(err?.message ?? "");
}

function writeError(e: unknown, partial: URL, received: number, total: number): ModelFetchError {
  const path = fileURLToPath(partial);
  if (isDiskFull(e)) {
    return new ModelFetchError(
      "disk_full",
      `Cannot write ${path}: the disk is full after ${formatBytes(received)} of ` +
        `${formatBytes(total)}; free ${formatBytes(total - received)} or more and run the same ` +
        "command again to resume (or delete the partial file)",
    );
  }
  return new ModelFetchError(
    "write_failed",
    `Cannot write ${path}: ${(e as Error).message}`,
  );
}

/** Parses "bytes 100-199/200" into its start and total (total NaN when "*"). */
function contentRange(header: string | null): { start: number; total: number } | undefined {
  const m = /^bytes\s+(\d+)-\d+\/(\d+|\*)$/i.exec(header?.trim() ?? "");
  return m ? { start: Number(m[1]), total: m[2] === "*" ? NaN : Number(m[2]) } : undefined;
}

/** A source's bytes from `offset`, or why there are none. */
type Opened =
  | { body: ReadableStream<Uint8Array>; offset: number; abort: AbortController }
  | Exclude<Attempt, { ok: true }>;

async function openFile(source: string, offset: number, pin: Pin): Promise<Opened> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(new URL(source), { read: true });
  } catch (e) {
    return { ok: false, reason: `cannot read it (${(e as Error).message})`, then: "next" };
  }
  const size = (await file.stat()).size;
  if (size !== pin.bytes) {
    file.close();
    return {
      ok: false,
      reason: `size ${size} bytes, expected ${pin.bytes}`,
      mismatch: true,
      then: "next",
    };
  }
  await file.seek(offset, Deno.SeekMode.Start);
  return { body: file.readable, offset, abort: new AbortController() };
}

async function openHttp(
  source: string,
  offset: number,
  pin: Pin,
  o: DownloadOptions,
): Promise<Opened> {
  const abort = new AbortController();
  const onCancel = () => abort.abort(o.signal?.reason);
  o.signal?.addEventListener("abort", onCancel, { once: true });
  const timeoutMs = o.headersTimeoutMs ?? 30_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort(new DOMException("headers timeout", "TimeoutError"));
  }, timeoutMs);
  let res: Response;
  try {
    res = await (o.fetch ?? fetch)(source, {
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      signal: abort.signal,
    });
  } catch (e) {
    o.signal?.throwIfAborted();
    return {
      ok: false,
      reason: networkReason(e, timedOut, timeoutMs),
      unreachable: true,
      then: "next",
    };
  } finally {
    clearTimeout(timer);
  }
  const give = async (a: Exclude<Attempt, { ok: true }>) => {
    await res.body?.cancel().catch(() => {});
    return a;
  };
  if (res.status === 206 && offset > 0) {
    const range = contentRange(res.headers.get("content-range"));
    if (
      !range || range.start !== offset || (!Number.isNaN(range.total) && range.total !== pin.bytes)
    ) {
      return give({
        ok: false,
        reason: `HTTP 206 with Content-Range "${res.headers.get("content-range")}" for a ` +
          `request from byte ${offset} of ${pin.bytes}`,
        then: "next",
      });
    }
  } else if (res.status === 200 || res.status === 206) {
    offset = 0; // a full answer (the server ignored the Range header): start over
    const length = res.status === 200 ? res.headers.get("content-length") : null;
    if (length !== null && Number(length) !== pin.bytes) {
      return give({
        ok: false,
        reason: `size ${length} bytes, expected ${pin.bytes}`,
        mismatch: true,
        then: "next",
      });
    }
  } else if (res.status === 416 && offset > 0) {
    return give({ ok: false, reason: "HTTP 416 Range Not Satisfiable", then: "restart" });
  } else {
    return give({
      ok: false,
      reason: `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`,
      then: "next",
    });
  }
  if (!res.body) return { ok: false, reason: `HTTP ${res.status} with no body`, then: "next" };
  return { body: res.body, offset, abort };
}

/** One try at one source. Throws only for write errors and cancellation. */
async function attempt(
  source: string,
  dest: URL,
  partial: URL,
  o: DownloadOptions,
): Promise<Attempt> {
  const { pin } = o;
  let offset = await fileSize(partial);
  if (offset > pin.bytes) {
    await removeIfThere(partial);
    offset = 0;
  }
  if (offset === pin.bytes) {
    // A complete partial file (e.g. the rename was interrupted): verify it, no request needed.
    if ((await sha256File(partial)) === pin.sha256) {
      await Deno.rename(partial, dest);
      return { ok: true, source: "(partial file)", resumedFrom: offset };
    }
    await removeIfThere(partial);
    offset = 0;
  }
  const opened = source.startsWith("file:")
    ? await openFile(source, offset, pin)
    : await openHttp(source, offset, pin, o);
  if ("ok" in opened) return opened;
  const resumedFrom = opened.offset;
  const hash = createHash("sha256");
  if (resumedFrom > 0) await hashPrefix(partial, resumedFrom, hash);

  let file: Deno.FsFile;
  try {
    file = await Deno.open(
      partial,
      resumedFrom > 0
        ? { write: true, append: true }
        : { write: true, create: true, truncate: true },
    );
  } catch (e) {
    await opened.body.cancel().catch(() => {});
    throw writeError(e, partial, resumedFrom, pin.bytes);
  }
  const reader = opened.body.getReader();
  const idleMs = o.idleTimeoutMs ?? 60_000;
  let idle = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      idle = true;
      opened.abort.abort(new DOMException("idle timeout", "TimeoutError"));
      reader.cancel().catch(() => {});
    }, idleMs);
  };
  let received = resumedFrom;
  const report = () => o.onProgress?.({ received, total: pin.bytes, source, resumedFrom });
  report();
  try {
    while (true) {
      arm();
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch {
        o.signal?.throwIfAborted();
        break; // dropped: handled below as a short read
      }
      if (idle) break;
      if (chunk.done) break;
      const bytes = chunk.value;
      if (bytes.length === 0) continue;
      if (received + bytes.length > pin.bytes) {
        await reader.cancel().catch(() => {});
        file.close();
        await removeIfThere(partial);
        return {
          ok: false,
          reason: `more than the expected ${pin.bytes} bytes; the download was deleted`,
          mismatch: true,
          then: "next",
        };
      }
      try {
        let written = 0;
        while (written < bytes.length) written += await file.write(bytes.subarray(written));
      } catch (e) {
        await reader.cancel().catch(() => {});
        throw writeError(e, partial, received, pin.bytes);
      }
      hash.update(bytes);
      received += bytes.length;
      report();
    }
  } finally {
    clearTimeout(timer);
    try {
      file.close();
    } catch { /* already closed */ }
  }
  o.signal?.throwIfAborted();
  if (received < pin.bytes) {
    return {
      ok: false,
      reason: `connection ${idle ? `stalled (no data for ${idleMs / 1000} s)` : "dropped"} after ` +
        `${formatBytes(received)} of ${formatBytes(pin.bytes)}`,
      then: "resume",
    };
  }
  const got = hash.digest("hex");
  if (got !== pin.sha256) {
    await removeIfThere(partial);
    return {
      ok: false,
      reason: `sha256 mismatch: got ${got}, expected ${pin.sha256}; the download was deleted`,
      mismatch: true,
      // Bytes resumed from another source or run may be the bad ones: one fresh try.
      then: resumedFrom > 0 ? "restart" : "next",
    };
  }
  await Deno.rename(partial, dest);
  return { ok: true, source, resumedFrom };
}

function listFailures(failures: SourceFailure[]): string {
  return failures.map((f, i) => `\n  ${i + 1}. ${f.source}: ${f.reason}`).join("");
}

/** The error for a download where every source failed. */
function failed(name: string, failures: SourceFailure[]): ModelFetchError {
  const hint =
    "\nAdd a mirror with --url URL (or MODEL_MIRRORS), or a local copy with --file PATH.";
  if (failures.length === 0) {
    return new ModelFetchError(
      "mirrors_failed",
      `Cannot fetch ${name}: no source to fetch it from`,
    );
  }
  if (failures.every((f) => f.unreachable)) {
    return new ModelFetchError(
      "offline",
      `Cannot fetch ${name}: no network (no source could be reached):${listFailures(failures)}` +
        hint,
      failures,
    );
  }
  if (failures.every((f) => f.mismatch)) {
    return new ModelFetchError(
      "mismatch",
      `Cannot use ${name}: no source served the pinned bytes (size or sha256 differ; ` +
        `nothing was kept):${listFailures(failures)}`,
      failures,
    );
  }
  return new ModelFetchError(
    "mirrors_failed",
    `Cannot fetch ${name}: every source failed:${listFailures(failures)}${hint}`,
    failures,
  );
}

/**
 * Downloads the pinned file to `dest` from the first source that serves it,
 * through `dest` + ".partial" (kept between runs so a later run resumes).
 *
 * @throws {ModelFetchError} When every source failed (`offline`,
 * `mirrors_failed`, `mismatch`) or the file cannot be written (`disk_full`,
 * `write_failed`).
 *
 * @example
 * ```ts
 * await download(
 *   ["https://huggingface.co/onnxmodelzoo/bvlcalexnet-12-int8/resolve/main/bvlcalexnet-12-int8.onnx"],
 *   new URL("file:///tmp/bvlcalexnet-12-int8.onnx"),
 *   { pin: { bytes: 60984008, sha256: "d53bbedf100be79277cf55d78c72bdcb67d88786988561bf5d530f038e443c7b" } },
 * );
 * ```
 */
export async function download(
  sources: readonly string[],
  dest: URL,
  options: DownloadOptions,
): Promise<DownloadResult> {
  const partial = new URL(`${dest.href}.partial`);
  const name = dest.pathname.slice(dest.pathname.lastIndexOf("/") + 1);
  const failures: SourceFailure[] = [];
  const retries = options.retries ?? 2;
  for (const source of sources) {
    let resumes = 0;
    let restarted = false;
    while (true) {
      options.signal?.throwIfAborted();
      const result = await attempt(source, dest, partial, options);
      if (result.ok) return { source: result.source, resumedFrom: result.resumedFrom, failures };
      const failure: SourceFailure = {
        source,
        reason: result.reason,
        unreachable: result.unreachable ?? false,
        mismatch: result.mismatch ?? false,
      };
      options.onFailure?.(failure);
      if (result.then === "resume" && resumes < retries) {
        resumes++;
        continue;
      }
      if (result.then === "restart" && !restarted) {
        restarted = true;
        await removeIfThere(partial);
        continue;
      }
      failures.push(failure);
      break;
    }
  }
  throw failed(name, failures);
}
