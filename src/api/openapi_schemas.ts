/**
 * zod schemas of the v1 API's bodies (/predict, /v1/models, the probes and
 * the error body), from which /openapi.json describes them; the tests check
 * the answers of those routes against them.
 *
 * @module
 */
import { z } from "@hono/zod-openapi";
import { ERROR_STATUS } from "../errors.ts";

const ERROR_CODES: string[] = Object.keys(ERROR_STATUS);

/**
 * Stable error codes, as `error.code` carries them: those of `src/errors.ts`,
 * and the 503s of the request limits (a full queue, a deadline passed).
 */
export const ErrorCodeSchema = z.enum(ERROR_CODES as [string, ...string[]]).openapi("ErrorCode");

/** The body of every error answer outside /v2. */
export const ErrorBodySchema = z.object({
  error: z.object({
    code: ErrorCodeSchema,
    message: z.string().openapi({ example: "Cannot classify yet: the model is still loading" }),
    request_id: z.string().optional().openapi({ description: "The answer's X-Request-Id." }),
  }),
}).openapi("ErrorBody");

/** Where the weights came from; synthetic ones carry a notice. */
export const WeightsSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("synthetic"), seed: z.number().int(), generator: z.string() }),
  z.object({
    kind: z.literal("pretrained"),
    source: z.string(),
    sha256: z.string(),
    license: z.string().optional(),
  }),
  z.object({ kind: z.literal("user"), source: z.string(), sha256: z.string().optional() }),
]).and(z.object({
  notice: z.string().optional().openapi({
    description: "Present for synthetic weights: their predictions are not meaningful.",
  }),
})).openapi("Weights");

/** One ranked class. */
export const PredictionSchema = z.object({
  index: z.number().int().min(0),
  label: z.string(),
  score: z.number(),
}).openapi("Prediction");

/** `POST /predict`: the answer. */
export const ClassificationSchema = z.object({
  model: z.string(),
  backend: z.string(),
  weights: WeightsSchema,
  predictions: z.array(PredictionSchema),
  timings_ms: z.object({
    decode: z.number(),
    preprocess: z.number(),
    inference: z.number(),
    total: z.number(),
    cpu: z.number().openapi({
      description: "CPU time (user + system, all threads) the process used from reading the " +
        "body to the answer, in ms: node:process cpuUsage before and after. Compare it with " +
        "your platform's per-request CPU budget; requests served at the same time count in " +
        "each other's.",
    }),
  }),
}).openapi("Classification");

/** `top_k`: how many classes to answer. */
export const TopKSchema = z.number().int().min(1).max(1000).openapi({
  description: "Number of classes to answer, highest score first (default 5).",
  example: 5,
});

/** `POST /predict` with a JSON body. */
export const PredictJsonSchema = z.object({
  image: z.string().openapi({
    description: "The image in base64, or a data: URL.",
    format: "byte",
  }),
  top_k: TopKSchema.optional(),
}).openapi("PredictJson");

/** `POST /predict` query parameters. */
export const PredictQuerySchema = z.object({
  top_k: TopKSchema.optional().openapi({ param: { name: "top_k", in: "query" } }),
});

/** How an image becomes the input tensor. */
export const PreprocessingSchema = z.object({
  width: z.number().int(),
  height: z.number().int(),
  resize: z.discriminatedUnion("mode", [
    z.object({ mode: z.literal("direct") }),
    z.object({ mode: z.literal("shorter_side"), size: z.number().int() }),
  ]),
  channelOrder: z.enum(["RGB", "BGR"]),
  scale: z.number(),
  mean: z.tuple([z.number(), z.number(), z.number()]),
  std: z.tuple([z.number(), z.number(), z.number()]),
}).openapi("Preprocessing");

/** `GET /v1/models`: one model. */
export const ModelInfoSchema = z.object({
  name: z.string(),
  input: z.object({
    name: z.string(),
    shape: z.array(z.number().int().nullable()).openapi({
      description: "[N, 3, H, W]; null is a variable dimension.",
    }),
    datatype: z.literal("float32"),
  }),
  output: z.object({
    name: z.string(),
    kind: z.enum(["probabilities", "logits"]),
    classes: z.number().int(),
  }),
  preprocessing: PreprocessingSchema,
  parameters: z.number().int(),
  precision: z.enum(["fp32", "fp16", "int8"]),
  weights: WeightsSchema,
  backend: z.object({
    name: z.string(),
    threads: z.number().int(),
    kernels: z.record(z.string(), z.enum(["custom", "ort"])).openapi({
      description: 'Who runs each custom-capable op: "custom" (ours) or "ort" (onnxruntime).',
    }),
  }),
  ready: z.boolean(),
}).openapi("ModelInfo");

/** `GET /v1/models`. */
export const ModelsSchema = z.object({ models: z.array(ModelInfoSchema) }).openapi("Models");

/** `GET /healthz`. */
export const HealthSchema = z.object({ status: z.literal("ok") }).openapi("Health");

/** `GET /readyz`. */
export const ReadySchema = z.object({ status: z.literal("ready"), model: z.string() })
  .openapi("Ready");

/** `POST /predict` as multipart/form-data. */
export const PredictFormSchema = z.object({
  image: z.string().openapi({ format: "binary", description: "The image file." }),
  top_k: TopKSchema.optional(),
}).openapi("PredictForm");
