/**
 * The Open Inference Protocol's JSON objects (KServe v2 / Triton HTTP), as
 * zod schemas: the infer handler validates requests with them and the
 * OpenAPI document at /openapi.json is generated from them.
 *
 * @module
 */
import { z } from "@hono/zod-openapi";

/** Tensor element types of the protocol. */
export const DATATYPES = [
  "BOOL",
  "UINT8",
  "UINT16",
  "UINT32",
  "UINT64",
  "INT8",
  "INT16",
  "INT32",
  "INT64",
  "FP16",
  "FP32",
  "FP64",
  "BF16",
  "BYTES",
] as const;

/** A tensor element type. */
export const Datatype = z.enum(DATATYPES).openapi("OipDatatype", {
  description: "Tensor element type. This server runs FP32 tensors and BYTES encoded images.",
});

const ParameterValue = z.union([z.string(), z.number(), z.boolean()]);

/** Parameters of a request input or response output: `binary_data_size` and free-form extras. */
export const TensorParameters = z.object({
  binary_data_size: z.number().int().min(0).optional().openapi({
    description: "Binary tensor data extension: the tensor's bytes follow the JSON header " +
      "(little-endian, row-major; BYTES elements each a 4-byte little-endian length then the bytes).",
  }),
}).catchall(ParameterValue).openapi("OipTensorParameters");

/** Parameters of a requested output: `binary_data` asks for the output as binary data. */
export const OutputParameters = z.object({
  binary_data: z.boolean().optional().openapi({
    description: "Return this output as binary data after the JSON header.",
  }),
}).catchall(ParameterValue).openapi("OipOutputParameters");

/** Parameters of an inference request: `binary_data_output` asks for every output as binary data. */
export const RequestParameters = z.object({
  binary_data_output: z.boolean().optional().openapi({
    description: "Return every output as binary data unless its own binary_data says otherwise.",
  }),
}).catchall(ParameterValue).openapi("OipRequestParameters");

/** Dimensions of a tensor in a request or response. */
export const Shape = z.array(z.number().int().min(0)).openapi({
  description: "Dimensions, outermost first.",
  example: [1, 3, 224, 224],
});

/** Row-major tensor contents; nested arrays are flattened. */
export const TensorData = z.array(z.union([z.number(), z.string(), z.boolean(), z.array(z.any())]))
  .openapi({
    description: "Row-major contents, flat or nested: numbers for FP32, base64 strings " +
      "(encoded images, any format /predict takes) for BYTES.",
  });

/** One input tensor of an inference request. */
export const RequestInput = z.object({
  name: z.string().min(1),
  shape: Shape,
  datatype: Datatype,
  parameters: TensorParameters.optional(),
  data: TensorData.optional(),
}).openapi("OipRequestInput");

/** One output an inference request asks for. */
export const RequestOutput = z.object({
  name: z.string().min(1),
  parameters: OutputParameters.optional(),
}).openapi("OipRequestOutput");

/** `POST /v2/models/{name}/infer`: the JSON body, or its JSON header when binary data follows. */
export const InferenceRequest = z.object({
  id: z.string().optional().openapi({ description: "Echoed in the response." }),
  parameters: RequestParameters.optional(),
  inputs: z.array(RequestInput).min(1),
  outputs: z.array(RequestOutput).optional().openapi({
    description: "Outputs to return (default: all).",
  }),
}).openapi("OipInferenceRequest");

/** One output tensor of an inference response. */
export const ResponseOutput = z.object({
  name: z.string(),
  shape: Shape,
  datatype: Datatype,
  parameters: TensorParameters.optional(),
  data: z.array(z.number()).optional().openapi({
    description: "Row-major contents; absent when the output is sent as binary data.",
  }),
}).openapi("OipResponseOutput");

/** The answer of an inference request (the JSON header when binary outputs follow). */
export const InferenceResponse = z.object({
  model_name: z.string(),
  model_version: z.string().optional(),
  id: z.string().optional(),
  parameters: RequestParameters.optional(),
  outputs: z.array(ResponseOutput),
}).openapi("OipInferenceResponse");

/** `GET /v2`: the server's metadata. */
export const ServerMetadata = z.object({
  name: z.string(),
  version: z.string(),
  extensions: z.array(z.string()),
}).openapi("OipServerMetadata");

/** An input or output of a model, as its metadata describes it; -1 is a variable dimension. */
export const TensorMetadata = z.object({
  name: z.string(),
  datatype: Datatype,
  shape: z.array(z.number().int().min(-1)),
}).openapi("OipTensorMetadata");

/** `GET /v2/models/{name}`: the model's metadata. */
export const ModelMetadata = z.object({
  name: z.string(),
  versions: z.array(z.string()).optional(),
  platform: z.string(),
  inputs: z.array(TensorMetadata),
  outputs: z.array(TensorMetadata),
}).openapi("OipModelMetadata");

/** Liveness and readiness answers. */
export const LiveResponse = z.object({ live: z.boolean() }).openapi("OipLive");
/** `GET /v2/health/ready`. */
export const ReadyResponse = z.object({ ready: z.boolean() }).openapi("OipReady");
/** `GET /v2/models/{name}/ready`. */
export const ModelReadyResponse = z.object({ name: z.string(), ready: z.boolean() })
  .openapi("OipModelReady");

/** Every error of the protocol's routes. */
export const OipError = z.object({ error: z.string() }).openapi("OipError", {
  example: { error: 'Cannot find model "resnet"; this server serves "alexnet-synthetic"' },
});

/** Path parameters of the model routes. */
export const ModelParams = z.object({
  name: z.string().openapi({
    param: { name: "name", in: "path" },
    example: "alexnet-synthetic",
    description: "The model's name (GET /v1/models shows it).",
  }),
});

/** Path parameters of the model routes with a version. */
export const VersionParams = ModelParams.extend({
  version: z.string().openapi({
    param: { name: "version", in: "path" },
    example: "1",
    description: 'The model version; this server has one, "1".',
  }),
});

/** Headers of an infer request. */
export const InferHeaders = z.object({
  "Inference-Header-Content-Length": z.string().regex(/^\d+$/, "must be a byte count")
    .optional().openapi({
      param: { name: "Inference-Header-Content-Length", in: "header" },
      description: "Binary tensor data extension: length in bytes of the JSON header at the " +
        "start of the body; the rest is the inputs' binary data, in the order of `inputs`.",
      example: "212",
    }),
});
