import assert from "node:assert/strict";
import { createApp } from "../../src/api/mod.ts";
import { config as netlify } from "../../deploy/netlify/edge-functions/alexnet.ts";
import { checkDeployKey } from "../../deploy/check.ts";
import { type Schema, validate } from "../../deploy/_schema.ts";

const ROOT = new URL("../../", import.meta.url);
const readJson = async (path: string) => JSON.parse(await Deno.readTextFile(new URL(path, ROOT)));
const exists = (path: string) => Deno.stat(new URL(path, ROOT)).then(() => true, () => false);

const schema: Schema = await readJson("deploy/deploy_key.schema.json");

Deno.test("deno.json's deploy key has the structure deno deploy accepts", async () => {
  const { deploy } = await readJson("deno.json");
  assert.deepEqual(validate(deploy, schema, "deploy"), []);
  // The deploy CLI's parser requires org; the user's own goes there or in --org.
  assert.equal(typeof deploy.org, "string");
  assert.ok(deploy.org.length > 0);
  assert.equal(typeof deploy.app, "string");
  assert.deepEqual(await checkDeployKey(), []);
});

Deno.test("the deploy key's schema refuses the keys deno deploy refuses", () => {
  const base = { org: "o", app: "a" };
  assert.deepEqual(validate({ ...base, project: "p" }, schema, "deploy"), [
    'deploy: "project" is not allowed',
  ]);
  assert.deepEqual(validate({ ...base, entrypoint: "main.ts" }, schema, "deploy"), [
    'deploy: "entrypoint" is not allowed',
  ]);
  assert.deepEqual(validate({ app: "a" }, schema, "deploy"), ['deploy: "org" is required']);
  assert.deepEqual(validate({ ...base, runtime: { mode: "edge" } }, schema, "deploy"), [
    "deploy.runtime.mode: expected one of dynamic, static",
  ]);
  assert.deepEqual(validate({ ...base, runtime: { memory_limit: 1 } }, schema, "deploy"), [
    'deploy.runtime: "memory_limit" is not allowed',
  ]);
  assert.deepEqual(validate({ ...base, include: ["a", 1] }, schema, "deploy"), [
    "deploy.include[1]: expected string, found number",
  ]);
});

Deno.test("deno.json deploys main.ts with the code, the page and the manifests, and tasks to check it", async () => {
  const { deploy, tasks } = await readJson("deno.json");
  assert.equal(deploy.runtime.entrypoint, "main.ts");
  for (const path of deploy.include as string[]) {
    if (path.includes("*")) continue;
    assert.ok(await exists(path), `deploy.include names ${path}, which is missing`);
  }
  assert.match(tasks.deploy, /^deno deploy\b/);
  assert.match(tasks["deploy:check"], /deploy\/check\.ts$/);
  assert.match(tasks["edge:sim"], /bench\/edge_sim\.ts$/);
});

Deno.test("the edge platforms' import map has every package the server imports, as deno.json pins it", async () => {
  const { imports } = await readJson("deno.json");
  const map: Record<string, string> = (await readJson("deploy/import_map.json")).imports;
  // deno.json's entries, plus "pkg/" for subpath imports (Deno adds those itself, import maps don't).
  for (const [key, value] of Object.entries(map)) {
    const pinned = imports[key] ?? `npm:/${imports[key.slice(0, -1)]?.slice(4)}/`;
    assert.equal(value, pinned, key);
  }
  const used = new Set<string>();
  const scan = async (dir: URL) => {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isDirectory) await scan(new URL(`${entry.name}/`, dir));
      else if (entry.name.endsWith(".ts")) {
        const text = await Deno.readTextFile(new URL(entry.name, dir));
        const statements = /^(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"|\bimport\("([^"]+)"\)/gm;
        for (const [, a, b] of text.matchAll(statements)) {
          const spec = a ?? b;
          if (spec.startsWith(".") || spec.startsWith("/")) continue;
          if (!/^(node|npm|jsr|https?):/.test(spec)) used.add(spec);
        }
      }
    }
  };
  await scan(new URL("src/", ROOT));
  await scan(new URL("deploy/", ROOT));
  for (const spec of used) {
    const known = spec in map ||
      Object.keys(map).some((k) => k.endsWith("/") && spec.startsWith(k));
    assert.ok(known, `deploy/import_map.json lacks "${spec}", which the server imports`);
  }
});

Deno.test("the Netlify edge function's paths cover every API route the app serves", () => {
  const app = createApp({});
  const patterns = netlify.path.map((pathname) => new URLPattern({ pathname }));
  const missing = new Set<string>();
  for (const route of app.routes) {
    if (route.method === "ALL" || route.path === "/*") continue; // middleware; the page (CDN)
    const concrete = route.path.replace(/:[^/]+/g, "x").replace(/\*/g, "x");
    if (!patterns.some((p) => p.test(`https://site.example${concrete}`))) missing.add(route.path);
  }
  assert.deepEqual([...missing], []);
});

Deno.test("the Netlify and Supabase settings name files that exist", async () => {
  const toml = await Deno.readTextFile(new URL("deploy/netlify/netlify.toml", ROOT));
  for (
    const [, path] of toml.matchAll(/^\s*(?:publish|edge_functions|deno_import_map) = "(.+)"/gm)
  ) {
    assert.ok(await exists(path), `netlify.toml names ${path}, which is missing`);
  }
  const supabase = await Deno.readTextFile(new URL("deploy/supabase/config.toml", ROOT));
  const base = new URL("deploy/supabase/", ROOT);
  for (const [, path] of supabase.matchAll(/^(?:entrypoint|import_map) = "(.+)"/gm)) {
    assert.ok(
      await Deno.stat(new URL(path, base)).then(() => true, () => false),
      `supabase config.toml names ${path}, which is missing`,
    );
  }
});
