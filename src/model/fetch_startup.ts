/**
 * Which model the server starts on. With no --model: the best pretrained
 * model in models/ (order in {@linkcode PREFERENCE}: int8 before fp32), else,
 * on a first run, the int8 zoo AlexNet fetched when a mirror answers within
 * a few seconds, else the synthetic AlexNet with a notice saying how to get
 * real weights. Never throws for that path, never waits longer than the probe
 * timeout for an unreachable network.
 *
 * `--model synthetic`, `--model <zoo name>` (e.g. `bvlcalexnet-12`, `int8`)
 * and `--model path/to/model.onnx` override the choice; `--offline` never
 * downloads.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { ClassifierError } from "../errors.ts";
import {
  fetchModel,
  type FetchModelOptions,
  probeSources,
  sourcesFor,
  writeZooManifest,
} from "./fetch.ts";
import { formatBytes } from "./download.ts";
import { fileMatchesSha256, type Sha256 } from "./sha256_cache.ts";
import { MODELS_DIR } from "./store.ts";
import { DEFAULT_FETCH, findZooEntry, namedEntry, PREFERENCE, ZOO, type ZooEntry } from "./zoo.ts";

/** Options of {@linkcode chooseStartupModel}; the server passes its configuration. */
export interface StartupOptions {
  /** --model: "synthetic", a zoo name or alias, or an ONNX path; absent: the best present. */
  model?: string;
  /** --manifest of an ONNX path. */
  manifest?: string;
  /** Never download (--offline). */
  offline?: boolean;
  /** How long mirrors get to answer before starting without them (default 5 s). */
  fetchTimeoutMs?: number;
  /** Mirror base URLs tried before the built-in ones (MODEL_MIRRORS). */
  mirrors?: string[];
  /** Try the built-in mirror list (default true; tests turn it off). */
  builtin?: boolean;
  /** Folder scanned and fetched into (default models/). */
  dir?: URL;
  /** The model a first run fetches (default the int8 zoo AlexNet; tests pass their own). */
  firstRun?: ZooEntry;
  /** The fetch to use (tests pass one that only reaches loopback). */
  fetch?: typeof fetch;
  /** Progress display of a download (default: a bar on stderr). */
  progress?: FetchModelOptions["progress"];
  /** Status lines. */
  log?: (line: string) => void;
  /** The hash for pinned files not in the sha256 cache (tests count its calls). */
  sha256?: Sha256;
}

/** The model to load; `model` absent means the synthetic AlexNet. */
export interface StartupChoice {
  /** ONNX file to load (with `manifest`), or absent for the synthetic AlexNet. */
  model?: string;
  /** Its manifest. */
  manifest?: string;
  /** One line for the log: what was chosen and why. */
  reason: string;
  /** Set when serving synthetic weights for want of real ones: how to get them. */
  notice?: string;
}

/** Default of {@linkcode StartupOptions.fetchTimeoutMs}. */
export const DEFAULT_FETCH_TIMEOUT_MS = 5_000;

const HOW_TO =
  "For real predictions run `deno task model:fetch` (the ONNX Model Zoo AlexNet, int8, 58 MB) " +
  'and restart; see README, "Real predictions".';

/**
 * Whether the entry's file is in `dir` as it should be: a regular file (not a
 * symbolic link) with its pinned size and sha256 (hashed on a first start,
 * then taken from the sha256 cache while size, mtime and ctime stay). When it
 * is there but wrong, `why` says how, for the log; such a file counts as
 * missing.
 */
async function onDisk(
  entry: ZooEntry,
  dir: URL,
  o: StartupOptions,
): Promise<{ ok: boolean; why?: string }> {
  const url = new URL(entry.file, dir);
  const stat = await Deno.lstat(url).catch(() => undefined);
  if (!stat) return { ok: false };
  if (stat.isSymlink) return { ok: false, why: "a symbolic link, which is not followed" };
  if (!stat.isFile) return { ok: false, why: "not a regular file" };
  if (entry.bytes !== undefined && stat.size !== entry.bytes) {
    return { ok: false, why: `${stat.size} bytes, expected ${entry.bytes}` };
  }
  if (entry.sha256 && !(await fileMatchesSha256(url, entry.sha256, { sha256: o.sha256 }))) {
    return { ok: false, why: "not the pinned file (its sha256 differs)" };
  }
  return { ok: true };
}

/** What to do about a zoo file that is there but wrong. */
function replaceHint(entry: ZooEntry): string {
  return entry.sha256
    ? `run \`deno task model:fetch ${entry.name}\` to replace it`
    : 'export it again in its place (see README, "Torchvision\'s AlexNet")';
}

const exists = (url: URL) => Deno.stat(url).then(() => true, () => false);

async function chosen(entry: ZooEntry, dir: URL, reason: string): Promise<StartupChoice> {
  const manifestUrl = new URL(`${entry.name}.json`, dir);
  const present = await exists(manifestUrl);
  // Pinned manifests are (re)written when missing or edited; the torchvision preset only when missing.
  if (entry.sha256 || !present) {
    try {
      await writeZooManifest(entry, dir);
    } catch (e) {
      if (!present) throw e; // a read-only models/ (a deploy) keeps the manifest it ships
    }
  }
  return {
    model: fileURLToPath(new URL(entry.file, dir)),
    manifest: fileURLToPath(manifestUrl),
    reason,
  };
}

/** Whether a download could be written into `dir` (a deploy's models/ may be read-only). */
async function isWritable(dir: URL): Promise<boolean> {
  try {
    await Deno.mkdir(dir, { recursive: true });
    const probe = await Deno.makeTempFile({ dir: fileURLToPath(dir), prefix: ".write-probe-" });
    await Deno.remove(probe);
    return true;
  } catch {
    return false;
  }
}

function hostOf(source: string): string {
  try {
    return new URL(source).host || source;
  } catch {
    return source;
  }
}

/**
 * Fetches an entry if a source answers within the probe timeout. Returns
 * why not otherwise (never throws for network trouble).
 */
async function tryFetch(
  entry: ZooEntry,
  dir: URL,
  o: StartupOptions,
): Promise<{ ok: true } | { ok: false; why: string }> {
  const log = o.log ?? (() => {});
  const timeoutMs = o.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
  const sources = sourcesFor(entry, { mirrors: o.mirrors, builtin: o.builtin });
  const { answered, failures } = await probeSources(sources, { timeoutMs, fetch: o.fetch });
  if (answered.length === 0) {
    const list = failures.map((f) => `${hostOf(f.source)}: ${f.reason}`).join("; ");
    return {
      ok: false,
      why: `no mirror answered${list ? ` (${list})` : ""}`,
    };
  }
  log(`Fetching ${entry.name} (${formatBytes(entry.bytes ?? 0)}) from ${hostOf(answered[0])}`);
  try {
    await fetchModel(entry, {
      dir,
      urls: answered,
      fetch: o.fetch,
      progress: o.progress,
      log,
    });
    return { ok: true };
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  }
}

/**
 * Picks (and if needed fetches) the model to start on.
 *
 * @throws {ClassifierError} Only when --model names a zoo model that is
 * missing and cannot be fetched.
 *
 * @example
 * ```ts
 * const choice = await chooseStartupModel({ offline: true, log: console.log });
 * const classifier = await loadClassifier({ ...choice });
 * ```
 */
export async function chooseStartupModel(options: StartupOptions = {}): Promise<StartupChoice> {
  const dir = options.dir ?? MODELS_DIR;
  const log = options.log ?? (() => {});
  const requested = options.model?.trim();

  if (requested?.toLowerCase() === "synthetic") {
    return {
      model: undefined,
      manifest: undefined,
      reason: "the synthetic AlexNet, as --model asks",
    };
  }
  const named = requested ? namedEntry(requested) : undefined;
  if (requested && !named) {
    return {
      model: requested,
      manifest: options.manifest,
      reason: `${requested}, as --model asks`,
    };
  }
  if (named) {
    const there = await onDisk(named, dir, options);
    if (there.ok) return chosen(named, dir, `${named.name}, as --model asks`);
    const state = `${new URL(named.file, dir).pathname} is ${there.why ?? "missing"}`;
    if (there.why) log(`Cannot use ${named.file}: it is ${there.why}; ${replaceHint(named)}`);
    const fetch = `run \`deno task model:fetch ${named.name}\``;
    if (!named.sha256) {
      throw new ClassifierError(
        "model_invalid",
        `Cannot serve ${named.name}: ${state}; export it first (see README, ` +
          '"Torchvision\'s AlexNet")',
      );
    }
    if (options.offline) {
      throw new ClassifierError(
        "model_invalid",
        `Cannot serve ${named.name}: ${state} and --offline is set; ${fetch}`,
      );
    }
    const got = await tryFetch(named, dir, options);
    if (!got.ok) {
      throw new ClassifierError(
        "model_invalid",
        `Cannot serve ${named.name}: it is not in ${dir.pathname} and ${got.why}; ${fetch} ` +
          "or pass --url/--file to it",
      );
    }
    return chosen(named, dir, `${named.name}, as --model asks (fetched)`);
  }

  for (const name of PREFERENCE) {
    const entry = ZOO.find((e) => e.name === name)!;
    const there = await onDisk(entry, dir, options);
    if (there.ok) {
      return chosen(entry, dir, `${entry.name}, the best pretrained model in ${dir.pathname}`);
    }
    if (there.why) log(`Skipping ${entry.file}: ${there.why}; ${replaceHint(entry)}`);
  }

  if (options.offline) {
    return {
      model: undefined,
      manifest: undefined,
      reason: "the synthetic AlexNet: no pretrained model in models/ and --offline is set",
      notice: HOW_TO,
    };
  }
  const entry = options.firstRun ?? findZooEntry(DEFAULT_FETCH)!;
  if (!(await isWritable(dir))) {
    return {
      model: undefined,
      manifest: undefined,
      reason: `the synthetic AlexNet: no pretrained model in ${dir.pathname}, which is read-only`,
      notice: HOW_TO,
    };
  }
  log(
    `No pretrained model in ${dir.pathname}: asking the mirrors for ${entry.name} ` +
      `(up to ${
        (options.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS) / 1000
      } s; --offline skips this)`,
  );
  const got = await tryFetch(entry, dir, options);
  if (got.ok) return chosen(entry, dir, `${entry.name}, fetched on this first run`);
  return {
    model: undefined,
    manifest: undefined,
    reason: `the synthetic AlexNet: no pretrained model in models/ and ${got.why}`,
    notice: HOW_TO,
  };
}
