/**
 * Netlify's side of `deno task edge:sim --profile=netlify`: serves the edge
 * function (deploy/netlify/edge-functions/alexnet.ts) on the paths of its
 * `config`, and static/ on the others as Netlify's CDN publishes it. Both come
 * from `EDGE_SIM_ROOT` (deploy:check's copy of the upload set), else this checkout.
 *
 * @module
 */
const ROOT = Deno.env.get("EDGE_SIM_ROOT")
  ? new URL(`file://${Deno.env.get("EDGE_SIM_ROOT")!.replace(/\/?$/, "/")}`)
  : new URL("../", import.meta.url);
const { default: alexnet, config } = await import(
  new URL("deploy/netlify/edge-functions/alexnet.ts", ROOT).href
) as typeof import("../deploy/netlify/edge-functions/alexnet.ts");

const STATIC = new URL("static/", ROOT);
const patterns = config.path.map((pathname) => new URLPattern({ pathname }));
const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
};

Deno.serve(async (request) => {
  if (patterns.some((p) => p.test(request.url))) return await alexnet(request);
  const path = new URL(request.url).pathname;
  const name = path === "/" ? "index.html" : path.slice(1);
  if (name.includes("..")) return new Response("Not Found", { status: 404 });
  try {
    const body = await Deno.readFile(new URL(name, STATIC));
    const type = TYPES[name.slice(name.lastIndexOf(".") + 1)] ?? "application/octet-stream";
    return new Response(body, { headers: { "content-type": type } });
  } catch {
    return new Response("Not Found", { status: 404 });
  }
});
