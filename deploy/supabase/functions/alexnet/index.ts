/**
 * Supabase Edge Function serving the API from the same Hono app as main.ts.
 * Supabase passes requests with the function's name first in the path
 * (`/alexnet/predict`); it is taken off before the app sees them. No Web
 * Worker API there, so inference runs on one thread; 256 MB of memory, so
 * only a model that fits is loaded (src/platform/mod.ts). The model is
 * fetched into memory at cold start (`MODEL=int8`, or `MODEL_URL` +
 * `MODEL_SHA256`). See docs/deploy.md.
 *
 * @module
 */
import { parseConfig } from "../../../../src/config.ts";
import { createServer } from "../../../../src/server.ts";

/** The function's name: the first path segment of every request. */
const BASE = "/alexnet";

const settings = parseConfig([], (key) => Deno.env.get(key));
const server = createServer({ ...settings, edgeProfile: settings.edgeProfile ?? "supabase" });

/** The request as the app sees it: the function's name taken off its path. */
function withoutBase(request: Request): Request {
  const url = new URL(request.url);
  if (url.pathname !== BASE && !url.pathname.startsWith(`${BASE}/`)) return request;
  url.pathname = url.pathname.slice(BASE.length) || "/";
  return new Request(url, request);
}

Deno.serve((request, info) => {
  // The page's links are relative: it must be asked for as /alexnet/, not /alexnet.
  const url = new URL(request.url);
  if (url.pathname === BASE) return Response.redirect(new URL(`${BASE}/${url.search}`, url), 308);
  return server.fetch(withoutBase(request), info);
});
