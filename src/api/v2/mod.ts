/**
 * The REST endpoints of the Open Inference Protocol (KServe v2, Triton's
 * HTTP API), to mount at /v2: server and model metadata, health, and
 * inference on the model's raw tensors, with the binary tensor data
 * extension. Errors are `{ "error": "<message>" }`, as the protocol has them.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context, ErrorHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Classifier } from "../../classify/mod.ts";
import { ClassifierError, ERROR_STATUS } from "../../errors.ts";
import { notReadyMessage } from "../health.ts";
import { RetryLaterError } from "../limits.ts";
import { Pipeline } from "../pipeline.ts";
import { SERVER_NAME, SERVER_VERSION, TAGS } from "../openapi.ts";
import type { ServerState } from "../state.ts";
import { inferSteps, MODEL_VERSION } from "./_infer.ts";
import {
  InferenceRequest,
  InferenceResponse,
  InferHeaders,
  LiveResponse,
  ModelMetadata,
  ModelParams,
  ModelReadyResponse,
  OipError,
  ReadyResponse,
  ServerMetadata,
  VersionParams,
} from "./_schemas.ts";

/** Protocol extensions this server supports. */
export const EXTENSIONS: readonly string[] = ["binary_tensor_data"];
/** Platform reported in model metadata: Triton's name for ONNX models on onnxruntime. */
export const PLATFORM = "onnxruntime_onnx";

/** Options of {@linkcode oipRoutes}. */
export interface OipOptions {
  /**
   * The request pipeline inference goes through: body, queue, budgets (`--max-body`,
   * `--max-queue`, `--max-pixels`, `--max-batch`) and deadline shared with the other routes
   * (default: one of its own, default budgets).
   */
  pipeline?: Pipeline;
}

const TAG = TAGS.oip;

/** The error answer of the protocol. */
function oipError(c: Context, status: number, message: string): Response {
  return c.json({ error: message }, status as 400);
}

/** Known errors keep their status and message; anything else is a bare 500. */
const onError: ErrorHandler = (err, c) => {
  if (err instanceof RetryLaterError) c.header("Retry-After", String(err.retryAfterSeconds));
  if (err instanceof ClassifierError) return oipError(c, ERROR_STATUS[err.code], err.message);
  if (err instanceof HTTPException) {
    return oipError(c, err.status, err.message || "Cannot process the request");
  }
  return oipError(c, 500, "Cannot complete the request: internal error");
};

const STATUS_TEXT: Record<number, string> = {
  400: "Malformed request: bad JSON, a wrong shape or datatype, truncated binary data, an " +
    "empty BYTES element.",
  404: "No such model or version.",
  408: "The body did not arrive in time (a pause or the whole read over the server's limits).",
  413: "Body over the server's limit, or a batch over its --max-batch.",
  415: "A BYTES element is not an image in a format /predict takes.",
  422: "A BYTES element is a truncated or corrupt image.",
  503: "The model is still loading (or failed to load), the queue is full (Retry-After), or " +
    "the request's deadline passed.",
};

/** Documented error answers for `statuses`. */
function errors(...statuses: number[]) {
  return Object.fromEntries(statuses.map((s) => [s, {
    description: STATUS_TEXT[s],
    content: { "application/json": { schema: OipError } },
  }]));
}

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

/** A model's route, with or without its `/versions/{version}` segment. */
function modelPath(versioned: boolean, tail = "") {
  return versioned ? `/models/{name}/versions/{version}${tail}` : `/models/{name}${tail}`;
}

/** GET a model's metadata. */
function metadataRoute<P extends typeof ModelParams>(versioned: boolean, params: P) {
  return createRoute({
    method: "get",
    path: modelPath(versioned),
    tags: [TAG],
    summary: versioned ? "Model version metadata" : "Model metadata",
    description: "The model's inputs and outputs with their datatypes and shapes " +
      "(-1 is a variable dimension), its versions and platform.",
    request: { params },
    responses: { 200: json(ModelMetadata, "Model metadata."), ...errors(404, 503) },
  });
}

/** GET a model's readiness. */
function modelReadyRoute<P extends typeof ModelParams>(versioned: boolean, params: P) {
  return createRoute({
    method: "get",
    path: modelPath(versioned, "/ready"),
    tags: [TAG],
    summary: versioned ? "Model version readiness" : "Model readiness",
    description: "200 once the model serves, 503 while it loads.",
    request: { params },
    responses: { 200: json(ModelReadyResponse, "The model is ready."), ...errors(404, 503) },
  });
}

/** The route definitions, exported for the OpenAPI tests. */
export const routes = {
  server: createRoute({
    method: "get",
    path: "/",
    tags: [TAG],
    summary: "Server metadata",
    description: "The server's name, version and the protocol extensions it supports.",
    responses: { 200: json(ServerMetadata, "Server metadata.") },
  }),
  live: createRoute({
    method: "get",
    path: "/health/live",
    tags: [TAG],
    summary: "Server liveness",
    description: "200 while the process answers.",
    responses: { 200: json(LiveResponse, "The server is live.") },
  }),
  ready: createRoute({
    method: "get",
    path: "/health/ready",
    tags: [TAG],
    summary: "Server readiness",
    description: "200 once the model serves, 503 while it loads.",
    responses: { 200: json(ReadyResponse, "The server is ready."), ...errors(503) },
  }),
  metadata: metadataRoute(false, ModelParams),
  versionMetadata: metadataRoute(true, VersionParams),
  modelReady: modelReadyRoute(false, ModelParams),
  versionModelReady: modelReadyRoute(true, VersionParams),
  infer: [false, true].map((versioned) =>
    createRoute({
      method: "post",
      path: modelPath(versioned, "/infer"),
      tags: [TAG],
      summary: versioned ? "Inference on a model version" : "Inference",
      description: "Runs the model on one input: FP32 `[N, 3, H, W]` in the model's input " +
        "shape (the raw tensor, preprocessed as GET /v1/models describes), or BYTES `[N]` " +
        "encoded images (base64 strings in JSON, or length-prefixed binary " +
        "elements), which are decoded and preprocessed as POST /predict does. Answers the " +
        "model's raw output, FP32 `[N, K]`.\n\nBinary tensor data extension: send the JSON " +
        "header, then the inputs' bytes, with `Inference-Header-Content-Length` giving the " +
        "header's length and `parameters.binary_data_size` on each binary input; ask for " +
        "binary outputs with `binary_data` on an output or `binary_data_output` on the " +
        "request. A binary answer is `application/octet-stream` with the same header.",
      request: {
        params: versioned ? VersionParams : ModelParams,
        headers: InferHeaders,
        body: {
          required: true,
          content: {
            "application/json": { schema: InferenceRequest },
            "application/octet-stream": {
              schema: {
                type: "string",
                format: "binary",
                description: "The JSON inference request (Inference-Header-Content-Length " +
                  "bytes), then each binary input's data in the order of `inputs`.",
              },
            },
          },
        },
      },
      responses: {
        200: {
          description: "The model's outputs.",
          headers: {
            "Inference-Header-Content-Length": {
              description: "With binary outputs: length of the JSON header at the body's start.",
              schema: { type: "integer" },
            },
          },
          content: {
            "application/json": { schema: InferenceResponse },
            "application/octet-stream": {
              schema: {
                type: "string",
                format: "binary",
                description: "The JSON inference response (Inference-Header-Content-Length " +
                  "bytes), then each binary output's little-endian data.",
              },
            },
          },
        },
        ...errors(400, 404, 408, 413, 415, 422, 503),
      },
    })
  ),
};

/** The served model, if `name` (and `version`) name it; throws the protocol's 404 or 503. */
function modelOf(state: ServerState, name: string, version?: string): Classifier {
  const classifier = state.classifier;
  if (!classifier) throw new ClassifierError("not_ready", notReadyMessage(state));
  const served = classifier.info.name;
  if (name !== served) {
    throw new ClassifierError(
      "not_found",
      `Cannot find model "${name}"; this server serves "${served}"`,
    );
  }
  if (version !== undefined && version !== MODEL_VERSION) {
    throw new ClassifierError(
      "not_found",
      `Cannot find version "${version}" of model "${name}"; its version is "${MODEL_VERSION}"`,
    );
  }
  return classifier;
}

/** The model's metadata in the protocol's terms. */
function metadata(classifier: Classifier): z.infer<typeof ModelMetadata> {
  const { name, input, output } = classifier.info;
  return {
    name,
    versions: [MODEL_VERSION],
    platform: PLATFORM,
    inputs: [{ name: input.name, datatype: "FP32", shape: input.shape.map((d) => d ?? -1) }],
    outputs: [{ name: output.name, datatype: "FP32", shape: [-1, output.classes] }],
  };
}

/**
 * The Open Inference Protocol routes, to mount at /v2.
 *
 * @example
 * ```ts
 * app.route("/v2", oipRoutes(state, { pipeline }));
 * ```
 */
export function oipRoutes(state: ServerState, options: OipOptions = {}): OpenAPIHono {
  const pipeline = options.pipeline ?? new Pipeline();
  const app = new OpenAPIHono({
    defaultHook: (result, c) => {
      if (!result.success) {
        const issue = result.error.issues[0];
        return oipError(
          c,
          400,
          `Cannot read the request: ${issue.path.join(".")}: ${issue.message}`,
        );
      }
    },
  });
  app.onError(onError);
  app.openapi(
    routes.server,
    (c) => c.json({ name: SERVER_NAME, version: SERVER_VERSION, extensions: [...EXTENSIONS] }, 200),
  );
  app.openapi(routes.live, (c) => c.json({ live: true }, 200));
  app.openapi(routes.ready, (c) => {
    if (!state.classifier) throw new ClassifierError("not_ready", notReadyMessage(state));
    return c.json({ ready: true }, 200);
  });
  app.openapi(routes.metadata, (c) => {
    return c.json(metadata(modelOf(state, c.req.valid("param").name)), 200);
  });
  app.openapi(routes.versionMetadata, (c) => {
    const { name, version } = c.req.valid("param");
    return c.json(metadata(modelOf(state, name, version)), 200);
  });
  app.openapi(routes.modelReady, (c) => {
    const { name } = c.req.valid("param");
    modelOf(state, name);
    return c.json({ name, ready: true }, 200);
  });
  app.openapi(routes.versionModelReady, (c) => {
    const { name, version } = c.req.valid("param");
    modelOf(state, name, version);
    return c.json({ name, ready: true }, 200);
  });
  // The body is JSON or a JSON header and binary data, so the pipeline reads it and the steps
  // validate it (with the same schemas) instead of a JSON-only validator.
  for (const route of routes.infer) {
    app.openAPIRegistry.registerPath(route);
    app.post(route.getRoutingPath(), (c) => {
      const classifier = modelOf(state, c.req.param("name")!, c.req.param("version"));
      const headers = InferHeaders.safeParse({
        "Inference-Header-Content-Length": c.req.header("inference-header-content-length"),
      });
      if (!headers.success) {
        throw new ClassifierError(
          "bad_request",
          `Cannot read the request: Inference-Header-Content-Length ${
            headers.error.issues[0].message
          }`,
        );
      }
      const headerLength = headers.data["Inference-Header-Content-Length"];
      const steps = inferSteps(headerLength === undefined ? undefined : Number(headerLength));
      return pipeline.handle(c, classifier, steps);
    });
  }
  app.all("/*", (c) => oipError(c, 404, `Cannot find ${c.req.method} ${c.req.path}`));
  return app;
}
