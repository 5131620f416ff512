/**
 * Reads the image and options out of a /predict request, in any of its three
 * forms: a raw body, multipart/form-data field `image`, or JSON
 * `{ "image": "<base64>" }`. The format itself is decided later from the
 * bytes, never from Content-Type.
 *
 * @module
 */
import { ClassifierError } from "../errors.ts";

/** The parts of a classification request. */
export interface ImageRequest {
  bytes: Uint8Array;
  /** `top_k` as given in the query or body, not yet validated. */
  topK?: unknown;
}

const bad = (message: string) => new ClassifierError("bad_request", message);

/** Decodes base64 (optionally a data: URL); throws a 400 on anything else. */
export function decodeBase64(text: string): Uint8Array {
  const payload = text.replace(/^data:[^,]*;base64,/, "").replace(/\s+/g, "");
  if (payload.length % 4 === 1 || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(payload)) {
    throw bad('Cannot read "image": it is not valid base64');
  }
  const binary = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

async function fromMultipart(request: Request): Promise<ImageRequest> {
  let form: FormData;
  try {
    form = await request.formData();
  } catch {
    throw bad("Cannot read the multipart body: it is malformed");
  }
  const files = form.getAll("image");
  if (files.length === 0) throw bad('Cannot classify: the form has no "image" file field');
  if (files.length > 1) throw bad('Cannot classify: send one "image" file per request');
  const file = files[0];
  if (typeof file === "string") throw bad('Cannot classify: the "image" field must be a file');
  return { bytes: new Uint8Array(await file.arrayBuffer()), topK: form.get("top_k") ?? undefined };
}

async function fromJson(request: Request): Promise<ImageRequest> {
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    throw bad("Cannot parse the JSON body");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw bad('Cannot classify: the JSON body must be an object like {"image": "<base64>"}');
  }
  const { image, top_k } = body as Record<string, unknown>;
  if (typeof image !== "string" || image === "") {
    throw bad('Cannot classify: the JSON body needs "image" as a base64 string');
  }
  return { bytes: decodeBase64(image), topK: top_k };
}

/**
 * Extracts the image bytes and `top_k` from a request.
 *
 * @example
 * ```ts
 * const { bytes } = await readImageRequest(new Request("http://x/predict", { method: "POST", body: png }));
 * ```
 */
export async function readImageRequest(request: Request): Promise<ImageRequest> {
  const type = (request.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  let parsed: ImageRequest;
  if (type === "multipart/form-data") parsed = await fromMultipart(request);
  else if (type === "application/json") parsed = await fromJson(request);
  else parsed = { bytes: new Uint8Array(await request.arrayBuffer()) };
  if (parsed.bytes.length === 0) {
    throw bad("Cannot classify: the request carries no image bytes");
  }
  return parsed;
}

/**
 * Validates `top_k`: an integer from 1 to `max`, default 5 (or `max` if smaller).
 *
 * @example
 * ```ts
 * parseTopK("3", 1000); // 3
 * ```
 */
export function parseTopK(value: unknown, max: number): number {
  if (value === undefined || value === null || value === "") return Math.min(5, max);
  const n = typeof value === "number" ? value : typeof value === "string" ? Number(value) : NaN;
  const limit = Math.min(1000, max);
  if (!Number.isInteger(n) || n < 1 || n > limit) {
    throw bad(`Cannot use top_k=${String(value)}: expected an integer from 1 to ${limit}`);
  }
  return n;
}

/**
 * {@linkcode readImageRequest} on a body already read (by the request
 * pipeline), with the request's headers.
 *
 * @example
 * ```ts
 * const { bytes, topK } = await readImageBody(body, c.req.raw);
 * ```
 */
export function readImageBody(body: Uint8Array, request: Request): Promise<ImageRequest> {
  const headers = new Headers(request.headers);
  headers.set("content-length", String(body.length));
  headers.delete("transfer-encoding");
  return readImageRequest(
    new Request(request.url, { method: "POST", headers, body: body as BodyInit }),
  );
}
