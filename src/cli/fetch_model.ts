/**
 * `deno task model:fetch [name] [--url URL]... [--file PATH] [--dir DIR]`:
 * downloads a pretrained AlexNet into models/ with a progress bar, resuming a
 * partial download, verifies its size and sha256, and writes its manifest.
 * `deno task start` then serves it. `--list` shows the known models.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import { fetchModel, ModelFetchError, toSource } from "../model/fetch.ts";
import { formatBytes } from "../model/download.ts";
import { DEFAULT_FETCH, findZooEntry, ZOO } from "../model/zoo.ts";

const USAGE =
  `Usage: deno task model:fetch [name|all] [--url URL]... [--file PATH] [--dir DIR] [--list]

  name     ${
    ZOO.filter((e) => e.sha256).map((e) => `${e.name} (${e.aliases.join(", ")})`).join(", ")
  }
           default ${DEFAULT_FETCH}; "all" fetches the three zoo files
  --url    fetch from this URL only (repeatable; tried in order)
  --file   use this local copy only (checked and copied)
  --dir    destination folder (default models/)
  --list   list the known models and exit

Mirrors in MODEL_MIRRORS (base URLs, space or comma separated) are tried before the built-in ones.
Whatever the source, the file is kept only if its size and sha256 match the pinned ones.`;

/** The known models as text lines. */
export function listModels(): string {
  return ZOO.map((e) => {
    const size = e.bytes ? formatBytes(e.bytes) : "export it yourself";
    return `${e.name.padEnd(20)} ${e.precision.padEnd(5)} top-1 ${e.accuracy.top1}%  top-5 ` +
      `${e.accuracy.top5}%  ${size}${e.sha256 ? `  sha256 ${e.sha256}` : ""}`;
  }).join("\n");
}

/** Runs the command; returns the exit code. */
export async function main(
  args: string[],
  env: (k: string) => string | undefined,
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        url: { type: "string", multiple: true },
        file: { type: "string" },
        dir: { type: "string" },
        list: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.list) {
    console.log(listModels());
    return 0;
  }
  if (positionals.length > 1) {
    console.error(`Cannot fetch several names at once (use "all")\n\n${USAGE}`);
    return 2;
  }
  const name = positionals[0] ?? DEFAULT_FETCH;
  const entries = name === "all" ? ZOO.filter((e) => e.sha256) : [findZooEntry(name)];
  if (entries.some((e) => e === undefined)) {
    console.error(`Cannot fetch "${name}": unknown model. Known:\n${listModels()}`);
    return 2;
  }
  const urls = [...(values.url ?? []), ...(values.file ? [toSource(values.file)] : [])];
  if (urls.length > 0 && entries.length > 1) {
    console.error('Cannot use --url or --file with "all": they are the bytes of one file');
    return 2;
  }
  const mirrors = (env("MODEL_MIRRORS") ?? "").split(/[\s,]+/).filter(Boolean);
  const dir = values.dir ? pathToFileURL(resolve(values.dir) + "/") : undefined;
  for (const entry of entries) {
    try {
      const got = await fetchModel(entry!, {
        dir,
        urls,
        mirrors,
        log: (line) => console.error(line),
      });
      console.log(
        `${got.entry.name} ready: ${got.modelUrl.pathname} (manifest ${got.manifestUrl.pathname})`,
      );
    } catch (e) {
      if (e instanceof ModelFetchError || e instanceof TypeError) {
        console.error(e.message);
        return 1;
      }
      throw e;
    }
  }
  console.log("Start the server with `deno task start`: it serves the best model in models/.");
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args, (k) => Deno.env.get(k)));
}
