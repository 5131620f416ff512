/**
 * Serves the upload page from static/. Only files that exist in that folder
 * when first asked for are served, looked up by exact name, so no request
 * path can reach outside it.
 *
 * @module
 */
import { Hono } from "hono";

const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  json: "application/json",
  ico: "image/x-icon",
  webmanifest: "application/manifest+json",
};

/** Default location of the page. */
export const STATIC_DIR: URL = new URL("../../static/", import.meta.url);

async function listFiles(dir: URL, prefix = ""): Promise<Map<string, URL>> {
  const files = new Map<string, URL>();
  try {
    for await (const entry of Deno.readDir(dir)) {
      const url = new URL(entry.name, dir);
      if (entry.isFile) files.set(prefix + entry.name, url);
      else if (entry.isDirectory) {
        for (
          const [k, v] of await listFiles(new URL(`${entry.name}/`, dir), `${prefix}${entry.name}/`)
        ) {
          files.set(k, v);
        }
      }
    }
  } catch {
    // A missing folder serves nothing; the API still works.
  }
  return files;
}

/** Routes serving every file of `dir` by its relative path; `/` is index.html. */
export function staticRoutes(dir: URL = STATIC_DIR): Hono {
  let files: Promise<Map<string, URL>> | undefined;
  return new Hono().get("/*", async (c, next) => {
    files ??= listFiles(dir);
    const name = c.req.path === "/" ? "index.html" : c.req.path.slice(1);
    const url = (await files).get(name);
    if (!url) return next();
    const body = await Deno.readFile(url);
    const ext = name.slice(name.lastIndexOf(".") + 1);
    return c.body(body, 200, {
      "content-type": CONTENT_TYPES[ext] ?? "application/octet-stream",
      "cache-control": "no-cache",
    });
  });
}
