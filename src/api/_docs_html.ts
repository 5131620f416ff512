/**
 * Renders an OpenAPI 3.1 document as one HTML page: no script, nothing from
 * other origins; its stylesheet ({@linkcode DOCS_CSS}) is served beside it, since
 * the app's Content-Security-Policy allows no inline styles.
 *
 * @module
 */

/** The parts of an OpenAPI document the page reads. */
export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description?: string };
  tags?: { name: string; description?: string }[];
  /** Path -> method -> operation. */
  paths?: object;
  components?: { schemas?: object };
}

type Schema = Record<string, unknown>;

interface Operation {
  tags?: string[];
  summary?: string;
  description?: string;
  parameters?: {
    name: string;
    in: string;
    required?: boolean;
    description?: string;
    schema?: Schema;
  }[];
  requestBody?: { description?: string; required?: boolean; content?: Record<string, Media> };
  responses?: Record<string, {
    description?: string;
    headers?: Record<string, { description?: string }>;
    content?: Record<string, Media>;
  }>;
}

interface Media {
  schema?: Schema;
}

const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

/** Escapes text for HTML. */
function esc(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** Descriptions: paragraphs and `code`, nothing else. */
function prose(text: string | undefined): string {
  if (!text) return "";
  return text.split(/\n{2,}/).map((p) =>
    `<p>${esc(p).replace(/`([^`]+)`/g, "<code>$1</code>")}</p>`
  ).join("");
}

const slug = (text: string) => text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
const refName = (ref: string) => ref.slice(ref.lastIndexOf("/") + 1);

/** A schema as a short type: `string`, `array of Prediction`, `"a" | "b"`. */
function typeOf(schema: Schema | undefined): string {
  if (!schema) return "any";
  if (typeof schema.$ref === "string") {
    const name = refName(schema.$ref);
    return `<a href="#schema-${slug(name)}">${esc(name)}</a>`;
  }
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => esc(JSON.stringify(v))).join(" | ");
  if ("const" in schema) return esc(JSON.stringify(schema.const));
  for (const key of ["anyOf", "oneOf"]) {
    const list = schema[key];
    if (Array.isArray(list)) return list.map((s) => typeOf(s as Schema)).join(" | ");
  }
  if (Array.isArray(schema.allOf)) {
    return schema.allOf.map((s) => typeOf(s as Schema)).join(" &amp; ");
  }
  const type = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type;
  if (type === "array") {
    if (Array.isArray(schema.prefixItems)) {
      return `[${schema.prefixItems.map((s) => typeOf(s as Schema)).join(", ")}]`;
    }
    return `array of ${typeOf(schema.items as Schema | undefined)}`;
  }
  const format = schema.format ? ` (${esc(schema.format)})` : "";
  return `${esc(type ?? (schema.properties ? "object" : "any"))}${format}`;
}

/** Bounds and defaults worth showing beside a type. */
function constraints(schema: Schema): string {
  const parts: string[] = [];
  for (const key of ["minimum", "maximum", "minItems", "minLength", "default", "example"]) {
    if (key in schema && Math.abs(Number(schema[key])) !== Number.MAX_SAFE_INTEGER) {
      parts.push(`${key} ${esc(JSON.stringify(schema[key]))}`);
    }
  }
  return parts.length ? ` <span class="muted">${parts.join(", ")}</span>` : "";
}

/** A schema: its type, and for objects a table of properties (nested objects inline). */
function schemaHtml(schema: Schema | undefined, depth = 0): string {
  if (!schema) return "";
  const own = prose(schema.description as string | undefined);
  const variants = (schema.anyOf ?? schema.oneOf ?? schema.allOf) as Schema[] | undefined;
  if (Array.isArray(variants) && depth < 4 && variants.some((v) => v.properties)) {
    return own + variants.map((v) => schemaHtml(v, depth + 1)).join("");
  }
  const props = schema.properties as Record<string, Schema> | undefined;
  if (!props || depth > 4) {
    return `<p class="type">${typeOf(schema)}${constraints(schema)}</p>${own}`;
  }
  const required = new Set((schema.required as string[] | undefined) ?? []);
  const rows = Object.entries(props).map(([name, s]) => {
    const nested = s.properties && !s.$ref
      ? schemaHtml(s, depth + 1)
      : prose(s.description as string);
    return `<tr><td><code>${esc(name)}</code>${
      required.has(name) ? "" : ' <span class="muted">optional</span>'
    }</td>` +
      `<td>${typeOf(s.properties ? { type: "object" } : s)}${
        constraints(s)
      }</td><td>${nested}</td></tr>`;
  });
  const extra = schema.additionalProperties;
  if (extra && typeof extra === "object") {
    rows.push(
      `<tr><td><span class="muted">other keys</span></td><td>${
        typeOf(extra as Schema)
      }</td><td></td></tr>`,
    );
  }
  return `${own}<table><tr><th>field</th><th>type</th><th></th></tr>${rows.join("")}</table>`;
}

function contentHtml(content: Record<string, Media> | undefined): string {
  if (!content) return "";
  return Object.entries(content).map(([type, media]) =>
    `<div class="media"><span class="mime">${esc(type)}</span>${schemaHtml(media.schema)}</div>`
  ).join("");
}

function operationHtml(method: string, path: string, op: Operation): string {
  const id = `op-${method}-${slug(path) || "root"}`;
  const params = op.parameters?.length
    ? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th></th></tr>${
      op.parameters.map((p) =>
        `<tr><td><code>${esc(p.name)}</code>${
          p.required ? "" : ' <span class="muted">optional</span>'
        }</td>` +
        `<td>${esc(p.in)}</td><td>${typeOf(p.schema)}${
          p.schema ? constraints(p.schema) : ""
        }</td>` +
        `<td>${prose(p.description ?? (p.schema?.description as string | undefined))}</td></tr>`
      ).join("")
    }</table>`
    : "";
  const body = op.requestBody
    ? `<h4>Request body${op.requestBody.required ? "" : " (optional)"}</h4>${
      prose(op.requestBody.description)
    }${contentHtml(op.requestBody.content)}`
    : "";
  const responses = Object.entries(op.responses ?? {}).map(([status, r]) => {
    const headers = Object.entries(r.headers ?? {}).map(([name, h]) =>
      `<p class="muted">header <code>${esc(name)}</code>: ${esc(h.description ?? "")}</p>`
    ).join("");
    return `<div class="response"><span class="status s${esc(status[0])}">${esc(status)}</span> ${
      esc(r.description ?? "")
    }${headers}${contentHtml(r.content)}</div>`;
  }).join("");
  return `<section class="op" id="${id}"><h3><span class="method ${method}">${method.toUpperCase()}</span> ` +
    `<code>${esc(path)}</code> <small>${esc(op.summary ?? "")}</small></h3>${
      prose(op.description)
    }` +
    `${params}${body}<h4>Responses</h4>${responses}</section>`;
}

/** The page's stylesheet, served at /docs.css. */
export const DOCS_CSS = `
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f7f8fa}
header,main{max-width:980px;margin:0 auto;padding:0 20px}header{padding-top:24px}
h1{margin:0}h2{margin-top:40px;border-bottom:1px solid #d8dce3}h3{margin:0 0 8px;font-size:17px}
h4{margin:14px 0 4px;font-size:14px;text-transform:uppercase;letter-spacing:.04em;color:#556}
nav ul{columns:2;padding-left:18px}code{font:13px ui-monospace,monospace;background:#eef0f4;padding:1px 4px;border-radius:3px}
.op{background:#fff;border:1px solid #d8dce3;border-radius:6px;padding:14px 18px;margin:14px 0}
.method{display:inline-block;min-width:52px;text-align:center;font-size:12px;color:#fff;border-radius:3px;padding:2px 6px;background:#667}
.get{background:#2f6fb0}.post{background:#2d8a4e}.put,.patch{background:#b07a1c}.delete{background:#b03a2f}
table{border-collapse:collapse;width:100%;margin:6px 0;font-size:14px}td,th{border-top:1px solid #e4e7ec;padding:4px 8px;text-align:left;vertical-align:top}
td p,.media p{margin:0}.muted{color:#778;font-size:13px}.mime{font:12px ui-monospace,monospace;color:#556}
.media{margin:6px 0 6px 12px}.response{margin:8px 0}.status{font-weight:600}.s2{color:#2d8a4e}.s3{color:#556}.s4{color:#b07a1c}.s5{color:#b03a2f}
small{color:#667;font-weight:400}
`;

/**
 * The page for `doc`.
 *
 * @example
 * ```ts
 * const html = renderDocs(app.getOpenAPI31Document(DOCUMENT_CONFIG));
 * ```
 */
export function renderDocs(doc: OpenApiDocument): string {
  const ops: { tag: string; method: string; path: string; op: Operation }[] = [];
  const paths = Object.entries(doc.paths ?? {}) as [string, Record<string, Operation>][];
  for (const [path, item] of paths) {
    for (const method of METHODS) {
      const op = item[method];
      if (op) ops.push({ tag: op.tags?.[0] ?? "Other", method, path, op });
    }
  }
  const tags = [...new Set([...(doc.tags ?? []).map((t) => t.name), ...ops.map((o) => o.tag)])]
    .filter((t) => ops.some((o) => o.tag === t));
  const nav = tags.map((t) =>
    `<li><a href="#tag-${slug(t)}">${esc(t)}</a><ul>${
      ops.filter((o) => o.tag === t).map((o) =>
        `<li><a href="#op-${o.method}-${slug(o.path) || "root"}">${o.method.toUpperCase()} ${
          esc(o.path)
        }</a></li>`
      ).join("")
    }</ul></li>`
  ).join("");
  const sections = tags.map((t) =>
    `<h2 id="tag-${slug(t)}">${esc(t)}</h2>${
      ops.filter((o) => o.tag === t).map((o) => operationHtml(o.method, o.path, o.op)).join("")
    }`
  ).join("");
  const components = Object.entries(doc.components?.schemas ?? {}) as [string, Schema][];
  const schemas = components.map(([name, s]) =>
    `<section class="op" id="schema-${slug(name)}"><h3><code>${esc(name)}</code></h3>${
      schemaHtml(s)
    }</section>`
  ).join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(doc.info.title)} API</title><link rel="stylesheet" href="/docs.css"></head>
<body><header><h1>${esc(doc.info.title)} API <small>${esc(doc.info.version)}</small></h1>
${prose(doc.info.description)}<p>OpenAPI ${
    esc(doc.openapi)
  }: <a href="/openapi.json">/openapi.json</a></p>
<nav><ul>${nav}<li><a href="#schemas">Schemas</a></li></ul></nav></header>
<main>${sections}<h2 id="schemas">Schemas</h2>${schemas}</main></body></html>
`;
}
