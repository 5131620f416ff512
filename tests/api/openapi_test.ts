import assert from "node:assert/strict";
import type { Hono } from "hono";
import { z } from "zod";
import { createApp, type ServerState } from "../../src/api/mod.ts";
import { openApiPaths } from "../../src/api/openapi.ts";
import { routes as oipRoutes } from "../../src/api/v2/mod.ts";
import { InferenceRequest, InferHeaders } from "../../src/api/v2/_schemas.ts";
import { loadClassifier } from "../../src/classify/load.ts";
import { fixture, writeTinyModel } from "../_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

// deno-lint-ignore no-explicit-any
type Doc = any;

async function documentOf(app: Hono): Promise<Doc> {
  const res = await app.request("/openapi.json");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /application\/json/);
  return await res.json();
}

/** "get /v2/models/{name}" for every route the app serves (middleware excluded). */
function servedOperations(app: Hono): string[] {
  const served = new Set<string>();
  for (const route of app.routes) {
    if (route.method === "ALL") continue; // middleware and catch-alls answering 404
    for (const path of openApiPaths(route.path)) {
      served.add(`${route.method.toLowerCase()} ${path}`);
    }
  }
  return [...served].sort();
}

/** "get /v2/models/{name}" for every operation the document describes. */
function documentedOperations(doc: Doc): string[] {
  const ops: string[] = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, object>)) {
    for (const method of Object.keys(item)) {
      if (METHODS.includes(method)) ops.push(`${method} ${path}`);
    }
  }
  return ops.sort();
}

/** A validator for a schema of the document, its component refs resolved. */
function validatorOf(doc: Doc, schema: object): z.ZodType {
  const defs = JSON.parse(
    JSON.stringify(doc.components.schemas).replaceAll('"#/components/schemas/', '"#/$defs/'),
  );
  const own = JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', '"#/$defs/'));
  return z.fromJSONSchema({ ...own, $defs: defs });
}

async function tinyState(): Promise<ServerState> {
  return { classifier: await loadClassifier(await writeTinyModel(64, 48)) };
}

Deno.test({
  name: "every route the app serves is described in /openapi.json, and nothing else",
  ...t,
  async fn() {
    for (const metricsPath of [undefined, "/prom", false] as const) {
      const app = createApp({}, { metricsPath });
      const doc = await documentOf(app);
      assert.equal(doc.openapi, "3.1.0");
      const served = servedOperations(app);
      const documented = documentedOperations(doc);
      assert.deepEqual(
        served.filter((op) => !documented.includes(op)),
        [],
        `served but not described (metricsPath ${metricsPath})`,
      );
      assert.deepEqual(
        documented.filter((op) => !served.includes(op)),
        [],
        `described but not served (metricsPath ${metricsPath})`,
      );
      for (const op of ["post /predict", "get /v2", "post /v2/models/{name}/infer", "get /"]) {
        assert.ok(served.includes(op), op);
      }
      assert.equal(served.includes("get /metrics"), metricsPath === undefined);
      assert.equal(served.includes("get /prom"), metricsPath === "/prom");
    }
  },
});

Deno.test("a route added without a description is caught", async () => {
  const app = createApp({});
  app.get("/v1/undocumented/:id", (c) => c.text("x"));
  const documented = documentedOperations(await documentOf(app));
  const missing = servedOperations(app).filter((op) => !documented.includes(op));
  assert.deepEqual(missing, ["get /v1/undocumented/{id}"]);
});

Deno.test("openApiPaths maps Hono patterns to OpenAPI paths", () => {
  assert.deepEqual(openApiPaths("/v2/models/:name/versions/:version"), [
    "/v2/models/{name}/versions/{version}",
  ]);
  assert.deepEqual(openApiPaths("/files/:id{[0-9]+}"), ["/files/{id}"]);
  assert.deepEqual(openApiPaths("/*"), ["/", "/{path}"]);
  assert.deepEqual(openApiPaths("/assets/*"), ["/assets", "/assets/{path}"]);
});

Deno.test("the document is well formed: refs resolve, path parameters are declared", async () => {
  const doc = await documentOf(createApp({}));
  const text = JSON.stringify(doc);
  for (const [, name] of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) {
    assert.ok(doc.components.schemas[name], `$ref ${name}`);
  }
  for (const name of Object.keys(doc.components.schemas)) {
    assert.doesNotThrow(() => validatorOf(doc, { $ref: `#/components/schemas/${name}` }), name);
  }
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Doc>>)) {
    const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const [method, op] of Object.entries(item)) {
      const where = `${method.toUpperCase()} ${path}`;
      const params = (op.parameters ?? []).filter((p: Doc) => p.in === "path");
      assert.deepEqual(params.map((p: Doc) => p.name).sort(), names, `${where} path parameters`);
      assert.ok(op.summary, `${where} summary`);
      assert.ok(op.tags?.length, `${where} tag`);
      assert.ok(Object.keys(op.responses ?? {}).some((s) => s.startsWith("2")), `${where} 2xx`);
    }
  }
});

Deno.test({
  name: "answers validate against the schemas the document publishes for them",
  ...t,
  async fn() {
    const state = await tinyState();
    const app = createApp(state);
    const loading = createApp({});
    const doc = await documentOf(app);
    const jpeg = await fixture("chelsea.jpg");
    const json = (body: unknown): RequestInit => ({
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const tensor = Array.from({ length: 3 * 48 * 64 }, (_, i) => (i % 255) - 120);
    const cases: [Hono, string, string, RequestInit?][] = [
      [app, "/predict", "/predict", { method: "POST", body: jpeg }],
      [app, "/predict", "/predict?top_k=0", { method: "POST", body: jpeg }],
      [app, "/predict", "/predict", { method: "POST", body: "not an image" }],
      [loading, "/predict", "/predict", { method: "POST", body: jpeg }],
      [app, "/v1/models", "/v1/models"],
      [loading, "/v1/models", "/v1/models"],
      [app, "/v1/models/current/labels", "/v1/models/current/labels"],
      [app, "/healthz", "/healthz"],
      [app, "/readyz", "/readyz"],
      [loading, "/readyz", "/readyz"],
      [app, "/v2", "/v2"],
      [app, "/v2/health/live", "/v2/health/live"],
      [app, "/v2/health/ready", "/v2/health/ready"],
      [loading, "/v2/health/ready", "/v2/health/ready"],
      [app, "/v2/models/{name}", "/v2/models/tiny-user-model"],
      [app, "/v2/models/{name}", "/v2/models/other"],
      [app, "/v2/models/{name}/versions/{version}", "/v2/models/tiny-user-model/versions/1"],
      [app, "/v2/models/{name}/ready", "/v2/models/tiny-user-model/ready"],
      [
        app,
        "/v2/models/{name}/infer",
        "/v2/models/tiny-user-model/infer",
        json({
          inputs: [{ name: "pixels", datatype: "FP32", shape: [1, 3, 48, 64], data: tensor }],
        }),
      ],
      [
        app,
        "/v2/models/{name}/infer",
        "/v2/models/tiny-user-model/infer",
        json({
          inputs: [{ name: "pixels", datatype: "FP32", shape: [1, 3, 48, 65], data: tensor }],
        }),
      ],
      [app, "/openapi.json", "/openapi.json"],
    ];
    for (const [target, docPath, url, init] of cases) {
      const method = (init?.method ?? "GET").toLowerCase();
      const res = await target.request(url, init);
      const where = `${method.toUpperCase()} ${url} -> ${res.status}`;
      const op = doc.paths[docPath]?.[method];
      assert.ok(op, `${where}: described`);
      const documented = op.responses[String(res.status)];
      assert.ok(documented, `${where}: status described`);
      const schema = documented.content?.["application/json"]?.schema;
      assert.ok(schema, `${where}: JSON schema described`);
      const parsed = validatorOf(doc, schema).safeParse(await res.json());
      assert.ok(parsed.success, `${where}: ${parsed.success ? "" : parsed.error.message}`);
    }
  },
});

Deno.test({
  name: "the infer route documents the schemas its handler validates with, and they agree",
  ...t,
  async fn() {
    const [plain] = oipRoutes.infer;
    assert.equal(plain.request.body.content["application/json"].schema, InferenceRequest);
    assert.equal(plain.request.headers, InferHeaders);
    const app = createApp(await tinyState());
    const doc = await documentOf(app);
    const published = validatorOf(doc, { $ref: "#/components/schemas/OipInferenceRequest" });
    const input = { name: "pixels", datatype: "FP32", shape: [1, 3, 48, 64] };
    const bodies = [
      { inputs: [{ ...input, data: Array(3 * 48 * 64).fill(0) }], id: "x" },
      { inputs: [{ ...input, datatype: "FLOAT", data: [0] }] },
      { inputs: [] },
      { inputs: [{ ...input, shape: [1.5], data: [0] }] },
      { inputs: [{ ...input, parameters: { binary_data_size: -4 } }] },
      { inputs: [{ ...input, data: [0] }], outputs: [{ name: 7 }] },
      { inputs: [{ ...input, data: [0] }], parameters: { binary_data_output: "yes" } },
    ];
    for (const body of bodies) {
      const res = await app.request("/v2/models/tiny-user-model/infer", {
        method: "POST",
        body: JSON.stringify(body),
      });
      const accepted = published.safeParse(body).success;
      assert.equal(
        res.status === 200,
        accepted,
        `${JSON.stringify(body).slice(0, 80)}: ${res.status}`,
      );
      await res.body?.cancel();
    }
  },
});

Deno.test({
  name: "/docs renders every operation and schema, with no script and nothing from elsewhere",
  ...t,
  async fn() {
    const app = createApp({});
    const doc = await documentOf(app);
    const res = await app.request("/docs");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /text\/html/);
    assert.ok(res.headers.get("content-security-policy"));
    const html = await res.text();
    assert.match(html, /^<!doctype html>/);
    assert.doesNotMatch(html, /<script|<iframe|<img|@import/i);
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//i, "nothing from other origins");
    for (const [path, item] of Object.entries(doc.paths as Record<string, object>)) {
      for (const method of Object.keys(item)) {
        const escaped = path.replace(/&/g, "&#38;");
        assert.ok(
          html.includes(`${method.toUpperCase()}</span> <code>${escaped}</code>`),
          `${method} ${path}`,
        );
      }
    }
    for (const name of Object.keys(doc.components.schemas)) {
      assert.ok(html.includes(`<code>${name}</code>`), name);
    }
    const css = await app.request("/docs.css");
    assert.equal(css.status, 200);
    assert.match(css.headers.get("content-type")!, /text\/css/);
    assert.match(html, /href="\/docs.css"/);
  },
});
