/**
 * Netlify Edge Function serving the whole API from the same Hono app as
 * main.ts. The page (static/) is published by Netlify's CDN; this function
 * answers the API paths below. The code bundle is capped at 20 MB compressed,
 * so the model is fetched into memory at cold start: `MODEL=int8` (pinned
 * sha256, from its mirrors or `MODEL_URL`), or `MODEL_URL` + `MODEL_SHA256`
 * for your own copy. See docs/deploy.md.
 *
 * @module
 */
import { parseConfig } from "../../../src/config.ts";
import { type AlexnetServer, createServer } from "../../../src/server.ts";

/** Netlify's global in its edge runtime (Deno.env also works there). */
const netlify = (globalThis as { Netlify?: { env: { get(key: string): string | undefined } } })
  .Netlify;
const env = (key: string) => netlify?.env.get(key) ?? Deno.env.get(key);

// Made on the first request, not at import: Netlify's bundler imports the module to read its
// `config`, and that must not start loading a model.
let server: AlexnetServer | undefined;

/** Netlify calls this for every request on the paths of {@linkcode config}. */
export default function alexnet(request: Request): Promise<Response> {
  if (!server) {
    const settings = parseConfig([], env);
    server = createServer({ ...settings, edgeProfile: settings.edgeProfile ?? "netlify" });
  }
  return server.fetch(request);
}

/** The paths this function answers; everything else is the published page. */
export const config = {
  path: [
    "/predict",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs.css",
    "/v1/*",
    "/v2",
    "/v2/*",
    "/vendor/*",
  ],
};
