/**
 * One Open Inference Protocol inference as the request pipeline's steps
 * (`../pipeline.ts`): the request body (JSON, or a JSON header and binary
 * tensor data) is parsed and every element checked (count, shape, datatype,
 * sizes, `--max-batch`) before anything is allocated or decoded; then the
 * model's input x: [N, 3, H, W] is made, either from the tensor itself (FP32)
 * or from N encoded images (BYTES) that the classifier decodes as for
 * /predict; the model gives its raw output y: [N, K]; the answer is JSON, or
 * a JSON header and binary data.
 *
 * @module
 */
import type { z } from "@hono/zod-openapi";
import { ClassifierError } from "../../errors.ts";
import type { Classifier } from "../../classify/mod.ts";
import type { Job, Steps } from "../pipeline.ts";
import { decodeBase64 } from "../_image_request.ts";
import {
  joinBody,
  readBytesElements,
  readFloat32LE,
  splitBody,
  writeFloat32LE,
} from "./_binary.ts";
import { JsonElementCount } from "./_json_count.ts";
import { InferenceRequest, type InferenceResponse, type RequestInput } from "./_schemas.ts";

type Request = z.infer<typeof InferenceRequest>;
type Input = z.infer<typeof RequestInput>;
type Response = z.infer<typeof InferenceResponse>;

/** The only version of every model this server serves. */
export const MODEL_VERSION = "1";

/** An inference answer: the JSON (header), and the binary outputs that follow it, if any. */
export interface InferAnswer {
  json: Response;
  binary: Uint8Array[];
}

/** A checked request: its model input, still encoded, and the outputs it asks for. */
export interface Checked {
  request: Request;
  /** FP32: the tensor's values (bytes or JSON numbers); BYTES: the N encoded images. */
  input:
    | { datatype: "FP32"; n: number; binary?: Uint8Array; values?: unknown[] }
    | { datatype: "BYTES"; n: number; images: Uint8Array[] };
  /** Per output asked: whether it goes as binary data. */
  binaryOutputs: boolean[];
}

/** The model's raw output y: [N, K]. */
type Output = Awaited<ReturnType<Classifier["inferRaw"]>>;

/** A preprocessed batch x: [N, 3, H, W]. */
export interface Batch {
  tensor: Float32Array;
  n: number;
}

const bad = (message: string) => new ClassifierError("bad_request", message);

/** Nesting of a request: body, inputs, input, data and its [N][C][H][W] levels, and one spare. */
const MAX_JSON_DEPTH = 8;

/** `inputs[0].shape` for a zod issue path. */
function issuePath(path: readonly PropertyKey[]): string {
  return path.map((p) => typeof p === "number" ? `[${p}]` : `.${String(p)}`).join("").slice(
    path.length > 0 && typeof path[0] !== "number" ? 1 : 0,
  );
}

/** Parses and validates the JSON (header) of an inference request. */
export function parseInferenceRequest(header: Uint8Array, maxBatch = Infinity): Request {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(header));
  } catch {
    throw bad("Cannot parse the inference request: it is not valid JSON");
  }
  // Before the schema walks every element: a batch over the cap is refused on its counts alone.
  for (const input of (json as { inputs?: unknown })?.inputs as unknown[] ?? []) {
    const { shape, data } = (input ?? {}) as { shape?: unknown; data?: unknown };
    const first = Array.isArray(shape) ? shape[0] : undefined;
    if (typeof first === "number") checkBatch(first, maxBatch);
    if ((input as { datatype?: unknown })?.datatype === "BYTES" && Array.isArray(data)) {
      checkBatch(data.length, maxBatch);
    }
  }
  return validateEnvelope(json);
}

/**
 * The request checked by its schema without its `data` arrays' elements, which
 * `checkFp32` and `checkImages` check one by one anyway: the schema's walk of
 * 600,000 values would cost the server's thread tens of milliseconds.
 */
function validateEnvelope(json: unknown): Request {
  const inputs = (json as { inputs?: unknown })?.inputs;
  const data = Array.isArray(inputs)
    ? inputs.map((i) => Array.isArray(i?.data) ? i.data as unknown[] : undefined)
    : [];
  const shell = data.some((d) => d !== undefined)
    ? {
      ...json as object,
      inputs: (inputs as object[]).map((i, k) => data[k] ? { ...i, data: [] } : i),
    }
    : json;
  const parsed = InferenceRequest.safeParse(shell);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issuePath(issue.path);
    throw bad(`Cannot read the inference request: ${where ? `${where}: ` : ""}${issue.message}`);
  }
  parsed.data.inputs.forEach((input, k) => {
    if (data[k]) input.data = data[k] as Input["data"];
  });
  return parsed.data;
}

/** Hands each input with `binary_data_size` its slice of the binary part, in order. */
function binaryChunks(inputs: readonly Input[], binary: Uint8Array): (Uint8Array | undefined)[] {
  let offset = 0;
  const chunks = inputs.map((input) => {
    const size = input.parameters?.binary_data_size;
    if (size === undefined) {
      if (input.data === undefined) {
        throw bad(
          `Cannot read input "${input.name}": it has neither "data" nor ` +
            `parameters.binary_data_size`,
        );
      }
      return undefined;
    }
    if (input.data !== undefined) {
      throw bad(
        `Cannot read input "${input.name}": it has both "data" and parameters.binary_data_size`,
      );
    }
    if (offset + size > binary.length) {
      throw bad(
        `Cannot read input "${input.name}": its binary data is truncated ` +
          `(binary_data_size ${size}, ${binary.length - offset} bytes left in the body)`,
      );
    }
    offset += size;
    return binary.subarray(offset - size, offset);
  });
  if (offset !== binary.length) {
    throw bad(
      `Cannot read the inference request: ${binary.length - offset} bytes follow the ` +
        "inputs' binary data",
    );
  }
  return chunks;
}

/** Flattens nested `data`, at most `depth` levels deep. */
function flatten(data: readonly unknown[], depth: number, what: string, out: unknown[] = []) {
  for (const v of data) {
    if (!Array.isArray(v)) out.push(v);
    else if (depth > 1) flatten(v, depth - 1, what, out);
    else throw bad(`Cannot read ${what}: "data" is nested deeper than its shape`);
  }
  return out;
}

const dims = (shape: readonly number[]) => `[${shape.join(", ")}]`;

/** 413 for a batch of `n` over `maxBatch`. */
function checkBatch(n: number, maxBatch: number): void {
  if (n <= maxBatch) return;
  throw new ClassifierError(
    "payload_too_large",
    `Cannot run inference: the batch has ${n} elements; send at most ${maxBatch} per request`,
  );
}

/** The model's input size. */
function planeOf(classifier: Classifier) {
  const { width: w, height: h } = classifier.info.preprocessing;
  return { c: 3, h, w, plane: 3 * h * w };
}

/** Checks an FP32 input x: [N, 3, H, W] against the model, without building it. */
function checkFp32(
  input: Input,
  chunk: Uint8Array | undefined,
  classifier: Classifier,
  maxBatch: number,
): Checked["input"] {
  const { c, h, w, plane } = planeOf(classifier);
  const what = `input "${input.name}"`;
  const s = input.shape;
  if (s.length !== 4 || s[0] < 1 || s[1] !== c || s[2] !== h || s[3] !== w) {
    throw bad(
      `Cannot run inference: ${what} has shape ${dims(s)}; the model takes [N, ${c}, ${h}, ${w}]` +
        " with N at least 1",
    );
  }
  checkBatch(s[0], maxBatch);
  const count = s[0] * plane;
  if (chunk) {
    if (chunk.length !== count * 4) {
      throw bad(
        `Cannot read ${what}: FP32 ${dims(s)} is ${count * 4} bytes, ` +
          `binary_data_size says ${chunk.length}`,
      );
    }
    return { datatype: "FP32", n: s[0], binary: chunk };
  }
  const values = flatten(input.data!, s.length, what);
  if (values.length !== count) {
    throw bad(
      `Cannot read ${what}: shape ${dims(s)} has ${count} elements, "data" has ${values.length}`,
    );
  }
  const at = values.findIndex((v) => typeof v !== "number");
  if (at >= 0) throw bad(`Cannot read ${what}: data[${at}] is not a number`);
  return { datatype: "FP32", n: s[0], values };
}

/** Checks a BYTES input of N encoded images: its shape, count and every element, none decoded. */
function checkImages(
  input: Input,
  chunk: Uint8Array | undefined,
  maxBatch: number,
): Checked["input"] {
  const what = `input "${input.name}"`;
  const s = input.shape;
  if (!(s.length === 1 || (s.length === 2 && s[1] === 1)) || s[0] < 1) {
    throw bad(
      `Cannot run inference: BYTES ${what} has shape ${dims(s)}; send [N] or [N, 1] encoded ` +
        "images with N at least 1",
    );
  }
  checkBatch(s[0], maxBatch);
  let images: Uint8Array[];
  if (chunk) images = readBytesElements(chunk, what, maxBatch);
  else {
    const values = flatten(input.data!, s.length, what);
    checkBatch(values.length, maxBatch);
    images = values.map((v, i) => {
      if (typeof v !== "string") throw bad(`Cannot read ${what}: data[${i}] is not a string`);
      try {
        return decodeBase64(v);
      } catch {
        throw bad(`Cannot read ${what}: data[${i}] is not valid base64`);
      }
    });
  }
  if (images.length !== s[0]) {
    throw bad(
      `Cannot read ${what}: shape ${dims(s)} has ${s[0]} elements, it carries ${images.length}`,
    );
  }
  const empty = images.findIndex((bytes) => bytes.length === 0);
  if (empty >= 0) throw bad(`Cannot read ${what}: element ${empty} is empty`);
  return { datatype: "BYTES", n: images.length, images };
}

/**
 * Parses and checks an inference request body (`headerLength`: the
 * Inference-Header-Content-Length value): every element is counted and
 * checked here, before any tensor is allocated or image decoded.
 *
 * @example
 * ```ts
 * const checked = checkInferenceRequest(body, classifier, { headerLength, maxBatch: 16 });
 * ```
 */
export function checkInferenceRequest(
  body: Uint8Array,
  classifier: Classifier,
  options: { headerLength?: number; maxBatch?: number } = {},
): Checked {
  const { headerLength, maxBatch = Infinity } = options;
  const { header, binary } = splitBody(body, headerLength);
  const request = parseInferenceRequest(header, maxBatch);
  const chunks = binaryChunks(request.inputs, binary);
  const { input: modelInput, output: modelOutput } = classifier.info;
  if (request.inputs.length !== 1) {
    throw bad(
      `Cannot run inference: the model takes one input ("${modelInput.name}"), ` +
        `the request has ${request.inputs.length}`,
    );
  }
  const [input] = request.inputs;
  if (input.name !== modelInput.name) {
    throw bad(
      `Cannot run inference: the model has no input "${input.name}"; its input is ` +
        `"${modelInput.name}"`,
    );
  }
  const binaryOutputs = selectOutputs(request, modelOutput.name);
  if (input.datatype === "FP32") {
    return {
      request,
      input: checkFp32(input, chunks[0], classifier, maxBatch),
      binaryOutputs,
    };
  }
  if (input.datatype === "BYTES") {
    return { request, input: checkImages(input, chunks[0], maxBatch), binaryOutputs };
  }
  throw bad(
    `Cannot run inference: input "${input.name}" is ${input.datatype}; send FP32 ` +
      "[N, 3, H, W] tensors or BYTES [N] encoded images",
  );
}

/** x: [N, 3, H, W] from a checked input: the tensor as sent, or the images decoded. */
export async function prepareBatch(checked: Checked, job: Job): Promise<Batch> {
  const { input } = checked;
  if (input.datatype === "FP32") {
    if (input.binary) return { tensor: readFloat32LE(input.binary), n: input.n };
    return { tensor: Float32Array.from(input.values as number[]), n: input.n };
  }
  const { classifier, maxPixels, signal } = job;
  const { plane } = planeOf(classifier);
  const what = `input "${checked.request.inputs[0].name}"`;
  const tensor = new Float32Array(input.n * plane); // n <= --max-batch, checked
  for (const [i, bytes] of input.images.entries()) {
    try {
      // x: [3, H, W], decoded and preprocessed where the classifier decodes.
      tensor.set(await classifier.prepareImage(bytes, { maxPixels, signal }), i * plane);
    } catch (e) {
      if (!(e instanceof ClassifierError) || input.n === 1) throw e;
      throw new ClassifierError(e.code, `${e.message} (${what}, element ${i})`, { cause: e });
    }
  }
  return { tensor, n: input.n };
}

/** The answer: y: [N, K] in each output asked for, as JSON data or binary data. */
export function inferAnswer(
  checked: Checked,
  classifier: Classifier,
  y: { data: Float32Array },
): InferAnswer {
  const { data } = y;
  const n = checked.input.n;
  const shape = [n, data.length / n];
  const name = classifier.info.output.name;
  const parts: Uint8Array[] = [];
  const outputs = checked.binaryOutputs.map((asBinary) => {
    if (!asBinary) return { name, datatype: "FP32" as const, shape, data: Array.from(data) };
    const bytes = writeFloat32LE(data);
    parts.push(bytes);
    return {
      name,
      datatype: "FP32" as const,
      shape,
      parameters: { binary_data_size: bytes.length },
    };
  });
  const { id } = checked.request;
  const json: Response = {
    model_name: classifier.info.name,
    model_version: MODEL_VERSION,
    ...(id !== undefined ? { id } : {}),
    outputs,
  };
  return { json, binary: parts };
}

/**
 * The steps of one inference for the request pipeline; `headerLength` is the
 * request's Inference-Header-Content-Length.
 *
 * @example
 * ```ts
 * return pipeline.handle(c, classifier, inferSteps(headerLength));
 * ```
 */
export function inferSteps(headerLength?: number): Steps<Checked, Batch, Output> {
  return {
    // The JSON's elements counted as it streams in: a big batch is refused from its first bytes.
    scan({ classifier, maxBatch }) {
      const count = new JsonElementCount(
        { maxBatch, tensorValues: planeOf(classifier).plane, maxDepth: MAX_JSON_DEPTH },
        headerLength,
      );
      return (chunk) => count.push(chunk);
    },
    parse: (body, _c, { classifier, maxBatch }) =>
      checkInferenceRequest(body, classifier, { headerLength, maxBatch }),
    prepare: prepareBatch,
    // y: [N, K], as the graph writes it.
    run: (batch, { classifier, signal }) => classifier.inferRaw(batch.tensor, batch.n, { signal }),
    answer(y, c, checked, { classifier }) {
      const answer = inferAnswer(checked, classifier, y);
      if (answer.binary.length === 0) return c.json(answer.json, 200);
      const joined = joinBody(answer.json, answer.binary);
      return c.body(joined.body, 200, {
        "content-type": "application/octet-stream",
        "inference-header-content-length": String(joined.headerLength),
      });
    },
  };
}
/** The outputs to answer, each with whether it goes as binary data. */
function selectOutputs(request: Request, outputName: string): boolean[] {
  const asked = request.outputs?.length ? request.outputs : [{ name: outputName }];
  const allBinary = request.parameters?.binary_data_output ?? false;
  return asked.map((o: { name: string; parameters?: { binary_data?: boolean } }) => {
    if (o.name !== outputName) {
      throw bad(
        `Cannot run inference: the model has no output "${o.name}"; its output is "${outputName}"`,
      );
    }
    return o.parameters?.binary_data ?? allBinary;
  });
}
