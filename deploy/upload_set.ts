/**
 * What each platform is given, listed before any upload:
 *
 * - Deno Deploy: the files `deno deploy` uploads, found as its file collector
 *   finds them (denoland/deploy-cli `rs_lib/src/lib.rs`, read 2026-12-07): a
 *   walk of the folder of deno.json that skips `.git`, every `node_modules`
 *   and whatever a .gitignore ignores, keeping what `deploy.include` names (all
 *   when absent) and `deploy.exclude` does not. The platform then runs
 *   `deploy.install` (`deno install`: npm packages from deno.lock).
 * - Netlify and Supabase: their bundlers take the edge function's module graph
 *   (static imports, followed by `deno info`), the import map, and the page:
 *   Netlify publishes static/ on its CDN; Supabase ships the `static_files` of
 *   deploy/supabase/config.toml. npm packages are bundled by the platform.
 *
 * @module
 */
import { type IgnoreRule, isIgnored, parseGitignore } from "./_gitignore.ts";
import { globToRegExp } from "./_gitignore.ts";

/** The platforms with an upload set. */
export type UploadPlatform = "deno-deploy" | "netlify" | "supabase";

/** deno.json's `deploy` key (the fields this project uses). */
export interface DeployKey {
  org: string;
  app?: string;
  install?: string;
  runtime?: { mode?: string; entrypoint?: string; args?: string[] };
  include?: string[];
  exclude?: string[];
}

/** What one platform is given. */
export interface UploadSet {
  platform: UploadPlatform;
  /** Files, from the root, `/`-separated, sorted. */
  files: string[];
  /** Their total size in bytes. */
  bytes: number;
  /** The size of a gzip-compressed tar of them (what `deno deploy` sends), bytes. */
  gzipBytes: number;
  /** npm packages the platform adds (from deno.lock or by bundling), name@version. */
  npm: string[];
  /** The file the platform runs. */
  entrypoint: string;
}

const hasGlob = (s: string) => /[*?[]/.test(s);
const trimSlashes = (s: string) => s.replace(/^\.\//, "").replace(/\/+$/, "");

/**
 * Whether `path` is named by an include/exclude entry: a path names itself and
 * everything under it; a glob matches the path or a folder above it.
 */
export function matchesEntry(entry: string, path: string): boolean {
  const e = trimSlashes(entry);
  if (!hasGlob(e)) return path === e || path.startsWith(`${e}/`);
  const re = globToRegExp(e);
  const parts = path.split("/");
  for (let i = parts.length; i > 0; i--) if (re.test(parts.slice(0, i).join("/"))) return true;
  return false;
}

/** Whether the deploy key keeps `path` (a file, from the root). */
export function keptByDeployKey(deploy: DeployKey, path: string): boolean {
  const included = deploy.include === undefined || deploy.include.length === 0 ||
    deploy.include.some((e) => matchesEntry(e, path));
  return included && !(deploy.exclude ?? []).some((e) => matchesEntry(e, path));
}

/** Every file `deno deploy` would upload from `root` under `deploy`, sorted. */
export async function denoDeployFiles(root: URL, deploy: DeployKey): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string, rules: IgnoreRule[]) => {
    const here = new URL(dir, root);
    const gitignore = await Deno.readTextFile(new URL(".gitignore", here)).catch(() => "");
    const all = gitignore ? [...rules, ...parseGitignore(gitignore, dir)] : rules;
    const entries = [];
    for await (const entry of Deno.readDir(here)) entries.push(entry);
    for (const entry of entries) {
      const path = `${dir}${entry.name}`;
      if (entry.isDirectory) {
        if (entry.name === ".git" || entry.name === "node_modules") continue;
        if (isIgnored(all, path, true)) continue;
        await walk(`${path}/`, all);
      } else if (entry.isFile && !isIgnored(all, path, false) && keptByDeployKey(deploy, path)) {
        files.push(path);
      }
    }
  };
  await walk("", []);
  return files.sort();
}

/** Local files and npm packages in an entrypoint's static module graph (`deno info --json`). */
export async function moduleGraph(
  root: URL,
  entry: string,
): Promise<{ files: string[]; npm: string[] }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", new URL("deno.json", root).pathname, entry],
    cwd: root.pathname,
    env: { NO_COLOR: "1" },
  }).output();
  if (code !== 0) {
    throw new Error(
      `Cannot follow the imports of ${entry}: ${new TextDecoder().decode(stderr).trim()}`,
    );
  }
  const info = JSON.parse(new TextDecoder().decode(stdout));
  const files = new Set<string>();
  for (const m of info.modules as { specifier: string }[]) {
    if (m.specifier.startsWith(root.href)) files.add(m.specifier.slice(root.href.length));
  }
  const npm = Object.keys(info.npmPackages ?? {}).sort();
  return { files: [...files].sort(), npm };
}

/** Files under `dir` (from the root) whose names match `glob` (gitignore dialect, `*` = one name). */
async function filesMatching(root: URL, glob: string): Promise<string[]> {
  const re = globToRegExp(glob);
  const out: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(new URL(dir || ".", root))) {
      const path = `${dir}${e.name}`;
      if (e.isDirectory && e.name !== "node_modules" && e.name !== ".git") {
        await walk(`${path}/`);
      } else if (e.isFile && re.test(path)) out.push(path);
    }
  };
  // Start at the glob's fixed folder, not the root.
  const fixed = glob.slice(0, glob.search(/[*?[]/)).replace(/[^/]*$/, "");
  await walk(fixed);
  return out;
}

/** Supabase's `static_files` (paths relative to deploy/supabase/), from its config.toml. */
export async function supabaseStaticFiles(root: URL): Promise<string[]> {
  const toml = await Deno.readTextFile(new URL("deploy/supabase/config.toml", root));
  const line = /^static_files\s*=\s*\[(.*)\]/m.exec(toml)?.[1] ?? "";
  const out: string[] = [];
  for (const [, rel] of line.matchAll(/"([^"]+)"/g)) {
    const path = new URL(rel, new URL("deploy/supabase/", root)).href.slice(root.href.length);
    out.push(...(hasGlob(path) ? await filesMatching(root, path) : [path]));
  }
  return out;
}

async function sizes(root: URL, files: string[]): Promise<{ bytes: number; gzipBytes: number }> {
  let bytes = 0;
  const chunks: Uint8Array[] = [];
  for (const f of files) {
    const data = await Deno.readFile(new URL(f, root));
    bytes += data.length;
    // A tar header per file (512 bytes) and the data padded to 512, as `deno deploy`'s tarball.
    chunks.push(new TextEncoder().encode(f.padEnd(512, "\0")), data);
    if (data.length % 512) chunks.push(new Uint8Array(512 - (data.length % 512)));
  }
  const gz = ReadableStream.from(chunks as BufferSource[]).pipeThrough(
    new CompressionStream("gzip"),
  );
  let gzipBytes = 0;
  for await (const c of gz) gzipBytes += c.length;
  return { bytes, gzipBytes };
}

/** The deno.json `deploy` key of the project at `root`. */
export async function readDeployKey(root: URL): Promise<DeployKey> {
  const json = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  return json.deploy;
}

/** npm packages deno.lock pins (what `deno install` puts in node_modules). */
async function lockedNpm(root: URL): Promise<string[]> {
  const lock = JSON.parse(await Deno.readTextFile(new URL("deno.lock", root)));
  return Object.keys(lock.npm ?? {}).sort();
}

/**
 * What `platform` is given from the project at `root`.
 *
 * @example
 * ```ts
 * const set = await uploadSet(new URL("./", import.meta.url), "deno-deploy");
 * set.files.includes("main.ts"); // true
 * ```
 */
export async function uploadSet(root: URL, platform: UploadPlatform): Promise<UploadSet> {
  let files: string[];
  let npm: string[];
  let entrypoint: string;
  if (platform === "deno-deploy") {
    const deploy = await readDeployKey(root);
    files = await denoDeployFiles(root, deploy);
    npm = await lockedNpm(root);
    entrypoint = deploy.runtime?.entrypoint ?? "main.ts";
  } else {
    entrypoint = platform === "netlify"
      ? "deploy/netlify/edge-functions/alexnet.ts"
      : "deploy/supabase/functions/alexnet/index.ts";
    const graph = await moduleGraph(root, entrypoint);
    npm = graph.npm;
    const page = platform === "netlify"
      ? await filesMatching(root, "static/*")
      : await supabaseStaticFiles(root);
    const settings = platform === "netlify"
      ? ["deploy/netlify/netlify.toml"]
      : ["deploy/supabase/config.toml"];
    files = [...new Set([...graph.files, ...page, ...settings, "deploy/import_map.json"])].sort();
  }
  return { platform, files, npm, entrypoint, ...await sizes(root, files) };
}
