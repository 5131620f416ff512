/**
 * `GET /openapi.json` (the OpenAPI 3.1 document of the whole app) and
 * `GET /docs` (the same document as an HTML page with no script and nothing
 * from other origins; its stylesheet is `GET /docs.css`).
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { DOCS_CSS, renderDocs } from "./_docs_html.ts";
import { type DescribeOptions, describePlainRoutes, DOCUMENT_CONFIG, TAGS } from "./openapi.ts";

/** The page's policy when the app sets none: its own stylesheet, nothing else. */
const DOCS_CSP = "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; " +
  "frame-ancestors 'self'";

const documentRoute = createRoute({
  method: "get",
  path: "/openapi.json",
  tags: [TAGS.operations],
  summary: "This document",
  description: "The OpenAPI 3.1 document of every route the server serves.",
  responses: {
    200: {
      description: "The document.",
      content: {
        "application/json": {
          schema: z.object({ openapi: z.string() }).catchall(z.unknown()).openapi("OpenApi"),
        },
      },
    },
  },
});

const pageRoute = createRoute({
  method: "get",
  path: "/docs",
  tags: [TAGS.operations],
  summary: "This document as a page",
  description: "The OpenAPI document rendered as HTML, with no script and nothing from " +
    "other origins.",
  responses: {
    200: { description: "HTML.", content: { "text/html": { schema: z.string() } } },
  },
});

const styleRoute = createRoute({
  method: "get",
  path: "/docs.css",
  tags: [TAGS.operations],
  summary: "The stylesheet of /docs",
  responses: {
    200: { description: "CSS.", content: { "text/css": { schema: z.string() } } },
  },
});

/**
 * The documentation routes, to mount at `/` of `app` once its other
 * routes are mounted; they also describe the routes `app` serves from plain
 * Hono sub-apps (see {@linkcode describePlainRoutes}).
 *
 * @example
 * ```ts
 * const app = new OpenAPIHono();
 * app.route("/v2", oipRoutes(state, { pipeline }));
 * app.route("/", docsRoutes(app, { metricsPath: "/metrics" }));
 * ```
 */
export function docsRoutes(app: OpenAPIHono, options: DescribeOptions = {}): OpenAPIHono {
  const docs = new OpenAPIHono();
  describePlainRoutes(docs.openAPIRegistry, options);
  // Built on first request, when every route of the app is mounted.
  let document: ReturnType<OpenAPIHono["getOpenAPI31Document"]> | undefined;
  let page: string | undefined;
  const get = () => document ??= app.getOpenAPI31Document(DOCUMENT_CONFIG);
  docs.openapi(documentRoute, (c) => c.json(get(), 200));
  docs.openapi(pageRoute, (c) => {
    page ??= renderDocs(get());
    c.header("content-security-policy", DOCS_CSP);
    return c.html(page, 200);
  });
  docs.openapi(styleRoute, (c) => {
    c.header("cache-control", "no-cache");
    return c.body(DOCS_CSS, 200, { "content-type": "text/css; charset=utf-8" });
  });
  return docs;
}
