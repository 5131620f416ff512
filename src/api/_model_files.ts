/**
 * Finds the files behind the loaded model: the classifier knows its name but
 * not where it was read from, so the manifests in models/ are searched for
 * that name. Models served from elsewhere (`--model /path/to/own.onnx`) are
 * not found; the explorer and in-browser mode then say so.
 *
 * @module
 */
import { MODELS_DIR } from "../model/store.ts";

/** The loaded model's ONNX file, manifest and labels. */
export interface ModelFiles {
  model: URL;
  manifest: URL;
  labels: URL;
}

/** Looks up a model's files from its name (see {@linkcode findModelFiles}). */
export type LocateModel = (name: string) => Promise<ModelFiles | undefined>;

/**
 * The files of the model whose manifest in `dir` has `name`.
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
    if (!entry.isFile || !entry.name.endsWith(".json")) continue;
    const manifest = new URL(entry.name, dir);
    let json: unknown;
    try {
      json = JSON.parse(await Deno.readTextFile(manifest));
    } catch {
      continue;
    }
    const m = json as { name?: unknown; model?: unknown; labels?: unknown };
    if (m?.name !== name || typeof m.model !== "string" || typeof m.labels !== "string") continue;
    const model = new URL(m.model, manifest);
    const exists = await Deno.stat(model).then((s) => s.isFile, () => false);
    if (exists) return { model, manifest, labels: new URL(m.labels, manifest) };
  }
  return undefined;
}
