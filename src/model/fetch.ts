/**
 * Getting a pretrained model into models/: pick its sources (your URLs or
 * local file, your mirrors, then the built-in list), download with resume and
 * a progress bar, verify size and sha256, move it into place and write its
 * manifest. Used by `deno task model:fetch` and by the first start.
 *
 * @module
 */
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import {
  download,
  type DownloadProgress,
  formatBytes,
  ModelFetchError,
  networkReason,
  sha256File,
  type SourceFailure,
} from "./download.ts";
import { progressBar } from "./_download_progress.ts";
import { MODELS_DIR } from "./store.ts";
import { findZooEntry, ZOO, type ZooEntry, zooManifestText } from "./zoo.ts";

export { ModelFetchError, type SourceFailure };

/** Options of {@linkcode fetchModel}. */
export interface FetchModelOptions {
  /** Destination folder (default models/). */
  dir?: URL;
  /** Use only these sources (http(s) or file: URLs), e.g. from --url or --file. */
  urls?: string[];
  /** Mirror base URLs tried before the built-in list (MODEL_MIRRORS); see {@linkcode mirrorUrl}. */
  mirrors?: string[];
  /** Try the built-in mirror list (default true). */
  builtin?: boolean;
  /** The fetch to use (tests pass one that only reaches loopback). */
  fetch?: typeof fetch;
  /** How long to wait for each source's response headers (default 30 s). */
  headersTimeoutMs?: number;
  /** Give up on a source that sends nothing for this long (default 60 s). */
  idleTimeoutMs?: number;
  /** Resuming tries per source after a dropped connection (default 2). */
  retries?: number;
  /** Cancels the download; the partial file stays for the next run. */
  signal?: AbortSignal;
  /** true (default): a progress bar on stderr; false: none; a function: your own. */
  progress?: boolean | ((p: DownloadProgress) => void);
  /** Status lines. */
  log?: (line: string) => void;
}

/** What {@linkcode fetchModel} did. */
export interface FetchedModel {
  entry: ZooEntry;
  modelUrl: URL;
  manifestUrl: URL;
  /** Where the bytes came from; "(already present)" when nothing was downloaded. */
  source: string;
  /** Bytes resumed from an earlier partial download. */
  resumedFrom: number;
  /** Sources that failed before the one that worked. */
  failures: SourceFailure[];
}

/**
 * A file's URL on a mirror: `{file}` in the base is replaced by the file
 * name, otherwise the name is appended after a slash.
 *
 * @example
 * ```ts
 * mirrorUrl("https://example.com/zoo/", "bvlcalexnet-12.onnx"); // "https://example.com/zoo/bvlcalexnet-12.onnx"
 * mirrorUrl("https://example.com/{file}?dl=1", "a.onnx"); // "https://example.com/a.onnx?dl=1"
 * ```
 */
export function mirrorUrl(base: string, file: string): string {
  if (base.includes("{file}")) return base.replaceAll("{file}", file);
  return base.endsWith("/") ? base + file : `${base}/${file}`;
}

/**
 * Turns a --url or --file argument into a source: URLs stay, anything else is
 * a local path made absolute.
 *
 * @example
 * ```ts
 * toSource("/tmp/m.onnx"); // "file:///tmp/m.onnx"
 * ```
 */
export function toSource(urlOrPath: string): string {
  if (/^(https?|file):/i.test(urlOrPath)) return urlOrPath;
  return pathToFileURL(resolve(urlOrPath)).href;
}

/**
 * The sources tried for an entry, in order: `urls` alone when given, else
 * the mirrors, then (unless `builtin` is false) the entry's built-in list.
 *
 * @example
 * ```ts
 * sourcesFor(findZooEntry("int8")!, { mirrors: ["https://example.com/zoo"] })[0];
 * // "https://example.com/zoo/bvlcalexnet-12-int8.onnx"
 * ```
 */
export function sourcesFor(
  entry: ZooEntry,
  options: Pick<FetchModelOptions, "urls" | "mirrors" | "builtin"> = {},
): string[] {
  if (options.urls?.length) return options.urls.map(toSource);
  return [
    ...(options.mirrors ?? []).map((m) => mirrorUrl(m, entry.file)),
    ...(options.builtin === false ? [] : entry.urls),
  ];
}

/** Writes a file via a temporary sibling and a rename. */
async function writeAtomic(url: URL, text: string): Promise<void> {
  const tmp = new URL(`${url.href}.${crypto.randomUUID()}.partial`);
  try {
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, url);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Makes sure `dir` holds the entry's manifest (rewritten when it differs
 * from the pinned one) and the labels it names. Returns the manifest's URL.
 *
 * @example
 * ```ts
 * const manifestUrl = await writeZooManifest(findZooEntry("int8")!);
 * ```
 */
export async function writeZooManifest(entry: ZooEntry, dir: URL = MODELS_DIR): Promise<URL> {
  const manifestUrl = new URL(`${entry.name}.json`, dir);
  const text = zooManifestText(entry);
  const current = await Deno.readTextFile(manifestUrl).catch(() => undefined);
  if (current !== text) await writeAtomic(manifestUrl, text);
  const labels = new URL(entry.manifest.labels, dir);
  const there = await Deno.lstat(labels).catch(() => undefined);
  if (!there?.isFile) {
    // A link is removed, not copied through: copyFile would overwrite what it points to.
    if (there?.isSymlink) await Deno.remove(labels);
    await Deno.copyFile(new URL(entry.manifest.labels, MODELS_DIR), labels);
  }
  return manifestUrl;
}

/**
 * Whether the entry's file is in `dir` with its pinned size, as a regular file
 * (a symbolic link is not followed). A cheap check: {@linkcode fetchModel}
 * and start-up also verify the sha256.
 */
export async function isPresent(entry: ZooEntry, dir: URL = MODELS_DIR): Promise<boolean> {
  const stat = await Deno.lstat(new URL(entry.file, dir)).catch(() => undefined);
  return !!stat?.isFile && (entry.bytes === undefined || stat.size === entry.bytes);
}

function lookUp(name: string | ZooEntry): ZooEntry {
  if (typeof name !== "string") return name;
  const entry = findZooEntry(name);
  if (!entry) {
    throw new TypeError(
      `Cannot fetch "${name}": unknown model; known: ${
        ZOO.map((e) => [e.name, ...e.aliases].join("|")).join(", ")
      }`,
    );
  }
  return entry;
}

/**
 * Fetches a pinned model into `dir` (default models/) and writes its
 * manifest. A file already there with the pinned sha256 is kept; one with
 * other bytes is replaced.
 *
 * @throws {TypeError} For an unknown name or one that cannot be downloaded
 * (the torchvision preset: you export it).
 * @throws {ModelFetchError} When no source served the pinned bytes or the
 * file cannot be written; its message lists each source with its status.
 *
 * @example
 * ```ts
 * const { manifestUrl } = await fetchModel("bvlcalexnet-12-int8");
 * ```
 */
export async function fetchModel(
  name: string | ZooEntry,
  options: FetchModelOptions = {},
): Promise<FetchedModel> {
  const entry = lookUp(name);
  if (entry.sha256 === undefined || entry.bytes === undefined) {
    throw new TypeError(
      `Cannot fetch ${entry.name}: it has no pinned download; export it yourself as ` +
        `models/${entry.file} (see README, "Torchvision's AlexNet")`,
    );
  }
  const pin = { sha256: entry.sha256, bytes: entry.bytes };
  const dir = options.dir ?? MODELS_DIR;
  const log = options.log ?? (() => {});
  await Deno.mkdir(dir, { recursive: true });
  const modelUrl = new URL(entry.file, dir);

  if (await isPresent(entry, dir)) {
    if ((await sha256File(modelUrl)) === pin.sha256) {
      log(`${entry.file} is already in ${dir.pathname} (sha256 verified)`);
      const manifestUrl = await writeZooManifest(entry, dir);
      return {
        entry,
        modelUrl,
        manifestUrl,
        source: "(already present)",
        resumedFrom: 0,
        failures: [],
      };
    }
    log(`${modelUrl.pathname} does not match its pinned sha256: fetching it again`);
    await Deno.remove(modelUrl);
  }

  const sources = sourcesFor(entry, options);
  const bar = options.progress === false || typeof options.progress === "function"
    ? undefined
    : progressBar({ label: entry.file });
  const onProgress = typeof options.progress === "function" ? options.progress : bar?.update;
  let result;
  try {
    result = await download(sources, modelUrl, {
      pin,
      fetch: options.fetch,
      headersTimeoutMs: options.headersTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      retries: options.retries,
      signal: options.signal,
      onProgress,
      onFailure: (f) => {
        bar?.done();
        log(`${f.source}: ${f.reason}`);
      },
    });
  } finally {
    bar?.done();
  }
  const manifestUrl = await writeZooManifest(entry, dir);
  log(
    `${entry.file} (${formatBytes(pin.bytes)}, sha256 ${pin.sha256.slice(0, 12)}…) is in ` +
      `${dir.pathname}, manifest ${manifestUrl.pathname}`,
  );
  return { entry, modelUrl, manifestUrl, ...result };
}

/** Options of {@linkcode probeSources}. */
export interface ProbeOptions {
  /** How long all sources together get to answer. */
  timeoutMs: number;
  /** The fetch to use. */
  fetch?: typeof fetch;
}

/**
 * Asks every source at once whether it serves the file (a one-byte Range
 * request), waiting at most `timeoutMs` in all. Returns those that answered
 * 200 or 206, in their original order, and why the others did not.
 *
 * @example
 * ```ts
 * const { answered } = await probeSources(sourcesFor(findZooEntry("int8")!), { timeoutMs: 5000 });
 * ```
 */
export async function probeSources(
  sources: readonly string[],
  options: ProbeOptions,
): Promise<{ answered: string[]; failures: SourceFailure[] }> {
  const f = options.fetch ?? fetch;
  const results = await Promise.all(sources.map(async (source): Promise<SourceFailure | null> => {
    const fail = (reason: string, unreachable = false) => ({
      source,
      reason,
      unreachable,
      mismatch: false,
    });
    if (source.startsWith("file:")) {
      return (await Deno.stat(new URL(source)).then((s) => s.isFile, () => false))
        ? null
        : fail("no such file");
    }
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort(new DOMException("probe timeout", "TimeoutError"));
    }, options.timeoutMs);
    try {
      const res = await f(source, { headers: { range: "bytes=0-0" }, signal: abort.signal });
      await res.body?.cancel().catch(() => {});
      if (res.status === 200 || res.status === 206) return null;
      return fail(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`);
    } catch (e) {
      return fail(networkReason(e, timedOut, options.timeoutMs), true);
    } finally {
      clearTimeout(timer);
    }
  }));
  return {
    answered: sources.filter((_, i) => results[i] === null),
    failures: results.filter((r): r is SourceFailure => r !== null),
  };
}
