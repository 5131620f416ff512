/**
 * Pinned models are hashed once, not on every start: the sha256 of a file
 * that matched its pin is kept in `.sha256_cache.json` beside it, keyed by
 * the file's path and by what changes when its bytes do (size, mtime, and
 * where the platform reports them, ctime and inode; ctime cannot be set back
 * by hand, and Deno reports it in whole seconds). A restart then checks a
 * 244 MB model with one stat instead of a second of hashing. The cache is a
 * hint: anything odd about it (missing, a link, too big, not JSON, read-only
 * folder) means "hash again".
 *
 * @module
 */
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { sha256File } from "./download.ts";

/** The cache file's name, in the folder of the files it describes. */
export const SHA256_CACHE_NAME = ".sha256_cache.json";

/** Entries kept (the newest); a models/ folder holds a handful of models. */
const MAX_ENTRIES = 32;
/** A cache file larger than this is not read (32 entries need about 8 KB). */
const MAX_CACHE_BYTES = 64 * 1024;

/** Hashes bytes in memory or a file on disk, lower-case hex; tests pass counting ones. */
export type Sha256 = (data: Uint8Array | URL) => Promise<string>;

/** The default {@linkcode Sha256}: node:crypto, streaming files in chunks. */
export const sha256Of: Sha256 = (data) =>
  data instanceof URL
    ? sha256File(data)
    : Promise.resolve(createHash("sha256").update(data).digest("hex"));

/** What identifies a file's bytes without reading them. */
export interface FileStamp {
  size: number;
  mtimeMs: number | null;
  ctimeMs: number | null;
  ino: number | null;
}

interface Entry extends FileStamp {
  path: string;
  sha256: string;
}

/**
 * The stamp of a stat result.
 *
 * @example
 * ```ts
 * stampOf(await Deno.lstat("models/bvlcalexnet-12-int8.onnx")).size; // 60984008
 * ```
 */
export function stampOf(info: Deno.FileInfo): FileStamp {
  return {
    size: info.size,
    mtimeMs: info.mtime?.getTime() ?? null,
    ctimeMs: info.ctime?.getTime() ?? null,
    ino: info.ino ?? null,
  };
}

/** Whether two stamps say the same bytes (a missing mtime never matches). */
export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.mtimeMs !== null && a.size === b.size && a.mtimeMs === b.mtimeMs &&
    a.ctimeMs === b.ctimeMs && a.ino === b.ino;
}

const cacheOf = (file: URL) => new URL(SHA256_CACHE_NAME, file);

function isEntry(v: unknown): v is Entry {
  const e = v as Entry;
  const numOrNull = (x: unknown) => x === null || Number.isFinite(x);
  return typeof e?.path === "string" && typeof e.sha256 === "string" &&
    Number.isSafeInteger(e.size) && numOrNull(e.mtimeMs) && numOrNull(e.ctimeMs) &&
    numOrNull(e.ino);
}

async function readEntries(cache: URL): Promise<Entry[]> {
  try {
    const info = await Deno.lstat(cache);
    if (!info.isFile || info.size > MAX_CACHE_BYTES) return [];
    const json = JSON.parse(await Deno.readTextFile(cache));
    return Array.isArray(json?.entries) ? json.entries.filter(isEntry) : [];
  } catch {
    return [];
  }
}

/**
 * The sha256 remembered for `file` with this stamp, if any.
 *
 * @example
 * ```ts
 * const url = new URL("models/bvlcalexnet-12-int8.onnx", import.meta.url);
 * await cachedSha256(url, stampOf(await Deno.lstat(url))); // "d53bbedf…" after a first load
 * ```
 */
export async function cachedSha256(file: URL, stamp: FileStamp): Promise<string | undefined> {
  const path = fileURLToPath(file);
  const entry = (await readEntries(cacheOf(file))).find((e) => e.path === path);
  return entry && sameStamp(entry, stamp) ? entry.sha256 : undefined;
}

/**
 * Remembers that `file` with this stamp hashed to `sha256`. Best effort: a
 * folder that cannot be written (a deploy's) only means hashing next time.
 *
 * @example
 * ```ts
 * await rememberSha256(url, stampOf(await Deno.lstat(url)), sha256);
 * ```
 */
export async function rememberSha256(file: URL, stamp: FileStamp, sha256: string): Promise<void> {
  const cache = cacheOf(file);
  const path = fileURLToPath(file);
  const kept = (await readEntries(cache)).filter((e) => e.path !== path);
  const entries = [...kept.slice(-(MAX_ENTRIES - 1)), { path, ...stamp, sha256 }];
  const tmp = new URL(`${cache.href}.${crypto.randomUUID()}.partial`);
  try {
    await Deno.writeTextFile(tmp, JSON.stringify({ version: 1, entries }, null, 1) + "\n");
    await Deno.rename(tmp, cache);
  } catch {
    await Deno.remove(tmp).catch(() => {});
  }
}

/** Options of {@linkcode fileMatchesSha256}. */
export interface MatchOptions {
  /** The hash to use on a cache miss (default {@linkcode sha256Of}). */
  sha256?: Sha256;
}

/**
 * Whether the regular file at `file` (not a link) hashes to `sha256`: from
 * the cache when its stamp is remembered, else hashed (and then remembered
 * when it matched and did not change meanwhile).
 *
 * @example
 * ```ts
 * await fileMatchesSha256(new URL("models/bvlcalexnet-12-int8.onnx", base), entry.sha256!);
 * ```
 */
export async function fileMatchesSha256(
  file: URL,
  sha256: string,
  options: MatchOptions = {},
): Promise<boolean> {
  const before = await Deno.lstat(file).catch(() => undefined);
  if (!before?.isFile) return false;
  const stamp = stampOf(before);
  if ((await cachedSha256(file, stamp)) === sha256) return true;
  // A file that shrinks while hashed throws: it does not match.
  const actual = await (options.sha256 ?? sha256Of)(file).catch(() => undefined);
  if (actual !== sha256) return false;
  const after = await Deno.lstat(file).catch(() => undefined);
  if (after && sameStamp(stamp, stampOf(after))) await rememberSha256(file, stamp, actual);
  return true;
}
