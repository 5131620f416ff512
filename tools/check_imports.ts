/**
 * The house gate: reads `src/`'s module graph from `deno info --json` and fails on an
 * import cycle, on a `_` file imported from outside its folder, on a floor rule broken
 * (a leaf folder importing up), and on a `src/` file that nothing the product runs imports. Run by `deno task check:imports` (in `deno task
 * ok` and `.ci/run`).
 *
 * @module
 */
import { dirname, join, relative } from "node:path";
import { fileURLToPath as fromFileUrl, pathToFileURL as toFileUrl } from "node:url";

const ROOT = join(dirname(fromFileUrl(import.meta.url)), "..");

/** Folders that may import only the listed folders (and themselves) of `src/`. */
const FLOOR_RULES: Record<string, readonly string[]> = {
  "src/errors.ts": [],
  "src/log.ts": [],
  "src/graph": ["src/errors.ts"],
  "src/platform": ["src/errors.ts"],
  "src/host": ["src/errors.ts", "src/log.ts"],
  "src/image": ["src/errors.ts", "src/host"],
};

/** File -> the files it imports, paths relative to the repository. */
export type Graph = Map<string, Set<string>>;

async function listSources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(join(ROOT, dir))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...await listSources(path));
    else if (/\.(ts|js)$/.test(entry.name)) out.push(path);
  }
  return out;
}

/** The graph among the repository's files, every static, dynamic and type-only import included. */
async function readGraph(files: string[]): Promise<Graph> {
  const entry = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    const lines = files.map((f) => `import type {} from "${toFileUrl(join(ROOT, f)).href}";`);
    await Deno.writeTextFile(entry, lines.join("\n"));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", `--config=${join(ROOT, "deno.json")}`, entry],
      cwd: ROOT,
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error("Cannot read the module graph: deno info failed");
    return toGraph(JSON.parse(new TextDecoder().decode(out.stdout)));
  } finally {
    await Deno.remove(entry);
  }
}

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier?: string }; type?: { specifier?: string } }[];
}

function toGraph(info: { modules: InfoModule[] }): Graph {
  const local = (spec?: string) => {
    if (!spec?.startsWith("file://")) return undefined;
    const path = relative(ROOT, fromFileUrl(spec));
    return path.startsWith("..") || path.startsWith("/") ? undefined : path;
  };
  const graph: Graph = new Map();
  for (const m of info.modules) {
    const from = local(m.specifier);
    if (!from) continue;
    const deps = new Set<string>();
    for (const d of m.dependencies ?? []) {
      for (const spec of [d.code?.specifier, d.type?.specifier]) {
        const to = local(spec);
        if (to && to !== from) deps.add(to);
      }
    }
    graph.set(from, deps);
  }
  return graph;
}

/** Only the `src/` files of a graph, and their imports among themselves. */
export function srcOnly(graph: Graph): Graph {
  const out: Graph = new Map();
  for (const [from, deps] of graph) {
    if (from.startsWith("src/")) {
      out.set(from, new Set([...deps].filter((d) => d.startsWith("src/"))));
    }
  }
  return out;
}

/**
 * `src/` files that nothing the product runs reaches: not imported from an entrypoint or a task's
 * script, nor started as a Worker (`new URL("./x.ts", import.meta.url)`) by a reached file.
 */
export function findUnused(graph: Graph, roots: string[], workerUrls: Graph): string[] {
  const seen = new Set<string>();
  const stack = [...roots];
  while (stack.length) {
    const f = stack.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const d of [...(graph.get(f) ?? []), ...(workerUrls.get(f) ?? [])]) stack.push(d);
  }
  // A plain reference (`*_reference.ts`) is kept for the tests that hold a fast kernel to it.
  const kept = (f: string) => seen.has(f) || /_reference\.ts$/.test(f);
  return [...graph.keys()].filter((f) => f.startsWith("src/") && !kept(f)).sort();
}

/** Files each source starts by URL (Workers), read from `new URL("./x.ts", import.meta.url)`. */
async function readWorkerUrls(files: string[]): Promise<Graph> {
  const out: Graph = new Map();
  for (const f of files) {
    const text = await Deno.readTextFile(join(ROOT, f));
    for (const m of text.matchAll(/new URL\(\s*"(\.{1,2}\/[^"]+\.ts)",\s*import\.meta\.url/g)) {
      const to = join(dirname(f), m[1]);
      if (!out.has(f)) out.set(f, new Set());
      out.get(f)!.add(to);
    }
  }
  return out;
}

/** What the product runs: main.ts, the edge entrypoints, and every script a deno.json task runs. */
async function readRoots(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const scripts = Object.values(config.tasks as Record<string, string>).flatMap((t) =>
    [...t.matchAll(/(?:^|\s)((?:src|bench|tools|deploy|tests)\/[\w/.-]+\.ts)/g)].map((m) => m[1])
  );
  const deploy = (await listSources("deploy")).filter((f) => !f.includes("/_"));
  return [...new Set(["main.ts", ...deploy, ...scripts])];
}

/** Strongly connected components of more than one file (Tarjan). */
export function findCycles(graph: Graph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1) cycles.push(component.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}

/** `a -> b` where b is a `_` file and a lives outside b's folder (its subfolders are inside). */
export function findPrivateImports(graph: Graph): string[] {
  const out: string[] = [];
  for (const [from, deps] of graph) {
    for (const to of deps) {
      const name = to.slice(to.lastIndexOf("/") + 1);
      const inside = `${dirname(from)}/`.startsWith(`${dirname(to)}/`);
      if (name.startsWith("_") && !inside) out.push(`${from} -> ${to}`);
    }
  }
  return out.sort();
}

/** Imports that break FLOOR_RULES. */
export function findFloorBreaks(graph: Graph): string[] {
  const ruleOf = (file: string) =>
    Object.keys(FLOOR_RULES).find((k) => file === k || file.startsWith(`${k}/`));
  const out: string[] = [];
  for (const [from, deps] of graph) {
    const rule = ruleOf(from);
    if (!rule) continue;
    for (const to of deps) {
      const home = ruleOf(to) ?? to;
      if (home === rule) continue;
      const ok = FLOOR_RULES[rule].some((a) => to === a || to.startsWith(`${a}/`));
      if (!ok) out.push(`${from} -> ${to} (${rule} may import only ${FLOOR_RULES[rule]})`);
    }
  }
  return out.sort();
}

if (import.meta.main) {
  const sources = await listSources("src");
  const roots = await readRoots();
  const whole = await readGraph([...sources, ...roots]);
  const graph = srcOnly(whole);
  const workers = await readWorkerUrls([...sources, ...roots]);
  const problems = [
    ...findUnused(whole, roots, workers).map((f) => `nothing the product runs imports ${f}`),
    ...findCycles(graph).map((c) => `import cycle: ${c.join(" <-> ")}`),
    ...findPrivateImports(graph).map((x) => `private file imported from another folder: ${x}`),
    ...findFloorBreaks(graph).map((x) => `import up a floor: ${x}`),
  ];
  for (const p of problems) console.error(p);
  console.log(
    `${graph.size} files in src/: ${problems.length ? `${problems.length} problems` : "no cycles"}`,
  );
  if (problems.length) Deno.exit(1);
}
