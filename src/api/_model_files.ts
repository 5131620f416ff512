/**
 * Finds the files behind the loaded model: the classifier knows its name but
 * not where it was read from, so the manifests in models/ are searched for
 * that name. Models served from elsewhere (`--model /path/to/own.onnx`) are
 * not found; the explorer and in-browser mode then say so. What is found is
 * confined to models/: `/v1/models/current.onnx` streams it to anyone.
 *
 * @module
 */
import { MODELS_DIR } from "../model/store.ts";
import { unconfinedReason } from "../model/manifest.ts";
import { fileMatchesSha256 } from "../model/sha256_cache.ts";

/** The loaded model's ONNX file, manifest and labels. */
export interface ModelFiles {
  model: URL;
  manifest: URL;
  labels: URL;
}

/** Looks up a model's files from its name (see {@linkcode findModelFiles}). */
export type LocateModel = (name: string) => Promise<ModelFiles | undefined>;

/** Manifests are a page of JSON; a bigger .json in models/ is not read. */
const MAX_MANIFEST_BYTES = 1024 * 1024;

/**
 * `path` from a manifest in `dir`, if it names a regular file (not a symbolic
 * link) whose real path is inside `dir`.
 */
async function confinedFile(path: unknown, dir: URL): Promise<URL | undefined> {
  if (typeof path !== "string" || unconfinedReason(path)) return undefined;
  const url = new URL(path, dir);
  try {
    if (!(await Deno.lstat(url)).isFile) return undefined;
    const [real, folder] = await Promise.all([Deno.realPath(url), Deno.realPath(dir)]);
    return real.startsWith(folder.endsWith("/") ? folder : `${folder}/`) ? url : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The files of the model whose manifest in `dir` has `name`: only regular
 * files inside `dir` (no symbolic link, no path out of it), and for a manifest
 * that pins a sha256, only a model file that matches it (from the sha256
 * cache the load left, else hashed once).
 *
 * @example
 * ```ts
 * const files = await findModelFiles("alexnet-synthetic");
 * files?.model.pathname; // ".../models/alexnet-synthetic.onnx"
 * ```
 */
export async function findModelFiles(
  name: string,
  dir: URL = MODELS_DIR,
): Promise<ModelFiles | undefined> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return undefined;
  }
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    // DirEntry.isFile is false for a symbolic link: a linked manifest is skipped.
    if (!entry.isFile || !entry.name.endsWith(".json")) continue;
    const manifest = new URL(entry.name, dir);
    let json: unknown;
    try {
      if ((await Deno.lstat(manifest)).size > MAX_MANIFEST_BYTES) continue;
      json = JSON.parse(await Deno.readTextFile(manifest));
    } catch {
      continue;
    }
    const m = json as {
      name?: unknown;
      model?: unknown;
      labels?: unknown;
      provenance?: { sha256?: unknown };
    };
    if (m?.name !== name) continue;
    const [model, labels] = await Promise.all([
      confinedFile(m.model, dir),
      confinedFile(m.labels, dir),
    ]);
    if (!model || !labels) continue;
    const pinned = m.provenance?.sha256;
    if (typeof pinned === "string" && !(await fileMatchesSha256(model, pinned.toLowerCase()))) {
      continue;
    }
    return { model, manifest, labels };
  }
  return undefined;
}
