/**
 * One Open Inference Protocol inference: the request body (JSON, or a JSON
 * header and binary tensor data) -> the model's input x: [N, 3, H, W] ->
 * its raw output y: [N, K] -> the response (JSON, or a JSON header and binary
 * data). The input is either the tensor itself (FP32) or N encoded images
 * (BYTES), which take the same decode and preprocessing path as /predict.
 *
 * @module
 */
import type { z } from "@hono/zod-openapi";
import { ClassifierError } from "../../errors.ts";
import type { Classifier } from "../../classify/mod.ts";
import { decodeImage, preprocess } from "../../image/mod.ts";
import { decodeBase64 } from "../_image_request.ts";
import { readBytesElements, readFloat32LE, splitBody, writeFloat32LE } from "./_binary.ts";
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

/** Options of {@linkcode infer}. */
export interface InferOptions {
  /** Largest image of a BYTES input, width x height from its header (default: decodeImage's). */
  maxPixels?: number;
}

/** A preprocessed batch x: [N, 3, H, W]. */
interface Batch {
  tensor: Float32Array;
  n: number;
}

const bad = (message: string) => new ClassifierError("bad_request", message);

/** `inputs[0].shape` for a zod issue path. */
function issuePath(path: readonly PropertyKey[]): string {
  return path.map((p) => typeof p === "number" ? `[${p}]` : `.${String(p)}`).join("").slice(
    path.length > 0 && typeof path[0] !== "number" ? 1 : 0,
  );
}

/** Parses and validates the JSON (header) of an inference request. */
export function parseInferenceRequest(header: Uint8Array): Request {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(header));
  } catch {
    throw bad("Cannot parse the inference request: it is not valid JSON");
  }
  const parsed = InferenceRequest.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issuePath(issue.path);
    throw bad(`Cannot read the inference request: ${where ? `${where}: ` : ""}${issue.message}`);
  }
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

/** x: [N, 3, H, W] from an FP32 input, from JSON `data` or its binary data. */
function fp32Batch(input: Input, chunk: Uint8Array | undefined, classifier: Classifier): Batch {
  const { width: w, height: h } = classifier.info.preprocessing;
  const c = 3;
  const what = `input "${input.name}"`;
  const s = input.shape;
  if (s.length !== 4 || s[0] < 1 || s[1] !== c || s[2] !== h || s[3] !== w) {
    throw bad(
      `Cannot run inference: ${what} has shape ${dims(s)}; the model takes [N, ${c}, ${h}, ${w}]` +
        " with N at least 1",
    );
  }
  const count = s[0] * c * h * w;
  if (chunk) {
    if (chunk.length !== count * 4) {
      throw bad(
        `Cannot read ${what}: FP32 ${dims(s)} is ${count * 4} bytes, ` +
          `binary_data_size says ${chunk.length}`,
      );
    }
    return { tensor: readFloat32LE(chunk), n: s[0] };
  }
  const values = flatten(input.data!, s.length, what);
  if (values.length !== count) {
    throw bad(
      `Cannot read ${what}: shape ${dims(s)} has ${count} elements, "data" has ${values.length}`,
    );
  }
  const tensor = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const v = values[i];
    if (typeof v !== "number") throw bad(`Cannot read ${what}: data[${i}] is not a number`);
    tensor[i] = v;
  }
  return { tensor, n: s[0] };
}

/** x: [N, 3, H, W] from a BYTES input of N encoded images, through the /predict image path. */
async function imageBatch(
  input: Input,
  chunk: Uint8Array | undefined,
  classifier: Classifier,
  maxPixels?: number,
): Promise<Batch> {
  const what = `input "${input.name}"`;
  const s = input.shape;
  if (!(s.length === 1 || (s.length === 2 && s[1] === 1)) || s[0] < 1) {
    throw bad(
      `Cannot run inference: BYTES ${what} has shape ${dims(s)}; send [N] or [N, 1] encoded ` +
        "images with N at least 1",
    );
  }
  let images: Uint8Array[];
  if (chunk) images = readBytesElements(chunk, what);
  else {
    images = flatten(input.data!, s.length, what).map((v, i) => {
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
  const spec = classifier.info.preprocessing;
  const plane = 3 * spec.width * spec.height;
  const tensor = new Float32Array(images.length * plane);
  for (const [i, bytes] of images.entries()) {
    if (bytes.length === 0) throw bad(`Cannot read ${what}: element ${i} is empty`);
    try {
      preprocess(await decodeImage(bytes, { maxPixels, fitFor: spec }), spec, tensor, i * plane);
    } catch (e) {
      if (!(e instanceof ClassifierError) || images.length === 1) throw e;
      throw new ClassifierError(e.code, `${e.message} (${what}, element ${i})`, { cause: e });
    }
  }
  return { tensor, n: images.length };
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

/**
 * Runs one inference request on `classifier`.
 *
 * @example
 * ```ts
 * const { json, binary } = await infer(classifier, body, { headerLength });
 * ```
 */
export async function infer(
  classifier: Classifier,
  body: Uint8Array,
  options: InferOptions & { headerLength?: number } = {},
): Promise<InferAnswer> {
  const { headerLength, maxPixels } = options;
  const { header, binary } = splitBody(body, headerLength);
  const request = parseInferenceRequest(header);
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
  let batch: Batch;
  if (input.datatype === "FP32") batch = fp32Batch(input, chunks[0], classifier);
  else if (input.datatype === "BYTES") {
    batch = await imageBatch(input, chunks[0], classifier, maxPixels);
  } else {
    throw bad(
      `Cannot run inference: input "${input.name}" is ${input.datatype}; send FP32 ` +
        "[N, 3, H, W] tensors or BYTES [N] encoded images",
    );
  }
  // y: [N, K], as the graph writes it.
  const { data } = await classifier.inferRaw(batch.tensor, batch.n);
  const shape = [batch.n, data.length / batch.n];
  const parts: Uint8Array[] = [];
  const outputs = binaryOutputs.map((asBinary) => {
    if (!asBinary) {
      return { name: modelOutput.name, datatype: "FP32" as const, shape, data: Array.from(data) };
    }
    const bytes = writeFloat32LE(data);
    parts.push(bytes);
    return {
      name: modelOutput.name,
      datatype: "FP32" as const,
      shape,
      parameters: { binary_data_size: bytes.length },
    };
  });
  const json: Response = {
    model_name: classifier.info.name,
    model_version: MODEL_VERSION,
    ...(request.id !== undefined ? { id: request.id } : {}),
    outputs,
  };
  return { json, binary: parts };
}
