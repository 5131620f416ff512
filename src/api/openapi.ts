/**
 * The OpenAPI 3.1 document of the whole HTTP API. Routes defined with
 * `@hono/zod-openapi` (/v2, /openapi.json, /docs) describe themselves from the
 * zod schemas they validate with; {@linkcode describePlainRoutes} describes
 * the routes served by plain Hono sub-apps, with the schemas of
 * `openapi_schemas.ts`. The tests fail when a served route is not described,
 * or a described one not served.
 *
 * @module
 */
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  ClassificationSchema,
  ErrorBodySchema,
  HealthSchema,
  ModelsSchema,
  PredictFormSchema,
  PredictJsonSchema,
  PredictQuerySchema,
  ReadySchema,
} from "./openapi_schemas.ts";

/** Name the server reports in /v2 and its OpenAPI document. */
export const SERVER_NAME = "alexnet-edge";
/** Version the server reports in /v2 and its OpenAPI document. */
export const SERVER_VERSION = "0.1.0";

/** The registry routes are described in. */
export type Registry = OpenAPIHono["openAPIRegistry"];

/** Options of {@linkcode describePlainRoutes}. */
export interface DescribeOptions {
  /** Path of the Prometheus scrape; false when none is served (default "/metrics"). */
  metricsPath?: string | false;
}

/** Tags, in the order the document and /docs list them. */
export const TAGS = {
  classify: "Classification",
  model: "Model",
  oip: "Open Inference Protocol (v2)",
  explorer: "Explorer",
  operations: "Operations",
  page: "Page",
} as const;

/** The document's top-level fields. */
export const DOCUMENT_CONFIG = {
  openapi: "3.1.0",
  info: {
    title: SERVER_NAME,
    version: SERVER_VERSION,
    description: "AlexNet image classification on onnxruntime-web: the /predict API, the " +
      "Open Inference Protocol (KServe v2) under /v2, the model explorer, probes and metrics. " +
      "Every answer carries X-Request-Id. Errors outside /v2 are " +
      '`{ "error": { "code", "message", "request_id" } }`; under /v2 `{ "error": "..." }`.',
  },
  tags: Object.values(TAGS).map((name) => ({ name })),
};

const STATUS_TEXT: Record<number, string> = {
  400: "Malformed request.",
  404: "Not found.",
  408: "The body did not arrive in time (a pause or the whole read over the server's limits).",
  413: "Body over the server's limit.",
  415: "The bytes are not an image in a supported format.",
  422: "The image is truncated or corrupt.",
  503: "The model is still loading (or failed to load), or the server is busy (Retry-After).",
};

/** Documented `ErrorBody` answers for `statuses`. */
function errors(...statuses: number[]) {
  return Object.fromEntries(statuses.map((s) => [s, {
    description: STATUS_TEXT[s],
    content: { "application/json": { schema: ErrorBodySchema } },
  }]));
}

const json = (schema: z.ZodType, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

const binary = (type: string, description: string) => ({
  description,
  content: { [type]: { schema: { type: "string" as const, format: "binary" } } },
});

/** The three forms of an image upload (/predict and the explorer's features). */
const IMAGE_BODY = {
  required: true,
  description: "The image (JPEG, PNG, GIF, ...; the format is read from its bytes): the raw " +
    'body, a multipart/form-data field "image", or JSON with base64.',
  content: {
    "application/json": { schema: PredictJsonSchema },
    "multipart/form-data": { schema: PredictFormSchema },
    "image/*": { schema: { type: "string" as const, format: "binary" } },
    "application/octet-stream": { schema: { type: "string" as const, format: "binary" } },
  },
};

/**
 * Describes the routes served by plain Hono sub-apps, which carry no OpenAPI
 * definitions of their own.
 *
 * @example
 * ```ts
 * describePlainRoutes(app.openAPIRegistry, { metricsPath: "/metrics" });
 * ```
 */
export function describePlainRoutes(registry: Registry, options: DescribeOptions = {}): void {
  registry.registerPath({
    method: "post",
    path: "/predict",
    tags: [TAGS.classify],
    summary: "Classify an image",
    description: "Classifies one image and answers the top-k classes with scores, the " +
      "weights' provenance and stage timings. `top_k` may be a query parameter or a field.",
    request: { query: PredictQuerySchema, body: IMAGE_BODY },
    responses: {
      200: {
        ...json(ClassificationSchema, "The top-k classes."),
        headers: {
          "X-CPU-Time-Ms": {
            description: "CPU time the process used while serving this request, in ms " +
              "(also `timings_ms.cpu`); concurrent requests count in each other's.",
            schema: { type: "number" },
          },
        },
      },
      ...errors(400, 408, 413, 415, 422, 503),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/v1/models",
    tags: [TAGS.model],
    summary: "The loaded model",
    description: "Input, preprocessing, parameters, precision, weights provenance, backend.",
    responses: { 200: json(ModelsSchema, "The loaded model."), ...errors(503) },
  });
  registry.registerPath({
    method: "get",
    path: "/v1/models/current.onnx",
    tags: [TAGS.model],
    summary: "The loaded model's ONNX file",
    description: "For in-browser inference; with an ETag, so a browser that has it gets 304.",
    responses: {
      200: binary("application/octet-stream", "The ONNX file."),
      304: { description: "Not modified (If-None-Match matched)." },
      ...errors(404, 503),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/v1/models/current/labels",
    tags: [TAGS.model],
    summary: "The loaded model's class names",
    responses: {
      200: json(
        z.object({ model: z.string(), labels: z.array(z.string()) }).openapi("Labels"),
        "Class names, by output index.",
      ),
      ...errors(404, 503),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/healthz",
    tags: [TAGS.operations],
    summary: "Liveness",
    description: "200 while the process serves.",
    responses: { 200: json(HealthSchema, "The process serves.") },
  });
  registry.registerPath({
    method: "get",
    path: "/readyz",
    tags: [TAGS.operations],
    summary: "Readiness",
    description: "200 once the model session is ready, 503 before.",
    responses: { 200: json(ReadySchema, "The model serves."), ...errors(503) },
  });
  const metricsPath = options.metricsPath ?? "/metrics";
  if (metricsPath !== false) {
    registry.registerPath({
      method: "get",
      path: metricsPath,
      tags: [TAGS.operations],
      summary: "Prometheus metrics",
      description: "Request counts and durations by route pattern, stage timings, queue depth, " +
        "model readiness and load time, process memory, in the Prometheus text format 0.0.4.",
      responses: {
        200: {
          description: "The metrics.",
          content: { "text/plain": { schema: { type: "string" } } },
        },
      },
    });
  }
  describeExplorer(registry);
  registry.registerPath({
    method: "get",
    path: "/vendor/ort/{file}",
    tags: [TAGS.page],
    summary: "onnxruntime-web for the page",
    description: "onnxruntime-web's browser builds (`ort*.mjs`) and WebAssembly " +
      "(`ort-wasm-*.wasm`), the version the server runs.",
    request: {
      params: z.object({
        file: z.string().openapi({ param: { name: "file", in: "path" }, example: "ort.min.mjs" }),
      }),
    },
    responses: {
      200: binary("application/wasm", "The file (text/javascript for .mjs)."),
      304: { description: "Not modified (If-None-Match matched)." },
      ...errors(404),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/",
    tags: [TAGS.page],
    summary: "The upload page",
    responses: {
      200: { description: "HTML.", content: { "text/html": { schema: { type: "string" } } } },
    },
  });
  registry.registerPath({
    method: "get",
    path: "/{path}",
    tags: [TAGS.page],
    summary: "The page's files",
    description: "Files of static/ by exact name (scripts, styles, icons); nothing outside it.",
    request: {
      params: z.object({
        path: z.string().openapi({ param: { name: "path", in: "path" }, example: "app.js" }),
      }),
    },
    responses: {
      200: binary("*/*", "The file, with its content type."),
      ...errors(404),
    },
  });
}

/** The explorer's routes under /v1/explorer. */
function describeExplorer(registry: Registry): void {
  registry.registerPath({
    method: "get",
    path: "/v1/explorer/layers",
    tags: [TAGS.explorer],
    summary: "The model's layers",
    description: "Every layer's output shape, parameters and multiply-adds, read from the " +
      "loaded graph; `maps` marks layers whose feature maps can be drawn.",
    responses: {
      200: json(
        z.object({
          model: z.string(),
          weights: z.string(),
          input: z.array(z.number().int()),
          parameters: z.number().int(),
          macs: z.number().int(),
          dropout: z.unknown(),
          layers: z.array(
            z.object({ name: z.string(), maps: z.boolean() }).catchall(z.unknown()),
          ),
        }).catchall(z.unknown()).openapi("ExplorerLayers"),
        "The layer table.",
      ),
      ...errors(404, 503),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/v1/explorer/filters.png",
    tags: [TAGS.explorer],
    summary: "The first convolution's filters",
    description: "Each filter normalized to 0..255, as a PNG grid.",
    request: {
      query: z.object({
        scale: z.number().int().min(1).max(8).optional().openapi({
          param: { name: "scale", in: "query" },
          description: "Pixels per weight (default 4).",
        }),
      }),
    },
    responses: { 200: binary("image/png", "The filters."), ...errors(400, 404, 503) },
  });
  registry.registerPath({
    method: "post",
    path: "/v1/explorer/features",
    tags: [TAGS.explorer],
    summary: "Feature maps of a layer for an image",
    description: "The first 64 feature maps of `layer` (default: the first with maps) for " +
      "the image, min-max normalized and heat-mapped, as a PNG grid.",
    request: {
      query: z.object({
        layer: z.string().optional().openapi({
          param: { name: "layer", in: "query" },
          example: "conv1",
        }),
      }),
      body: IMAGE_BODY,
    },
    responses: {
      200: binary("image/png", "The feature maps."),
      ...errors(400, 404, 408, 413, 415, 422, 503),
    },
  });
}

/**
 * The OpenAPI paths a Hono route pattern serves: `:name` becomes `{name}`, and
 * a trailing `/*` serves both its folder and `{path}` below it.
 *
 * @example
 * ```ts
 * openApiPaths("/v2/models/:name"); // ["/v2/models/{name}"]
 * openApiPaths("/*"); // ["/", "/{path}"]
 * ```
 */
export function openApiPaths(honoPath: string): string[] {
  const path = honoPath.replace(/:(\w+)(\{[^}]*\})?\??/g, "{$1}");
  if (!path.endsWith("/*")) return [path];
  const base = path.slice(0, -2);
  return [base || "/", `${base}/{path}`];
}
