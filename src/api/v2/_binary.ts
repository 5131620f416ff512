/**
 * The binary tensor data extension of the Open Inference Protocol: a body is
 * a JSON header of `Inference-Header-Content-Length` bytes followed by the
 * tensors' raw bytes, little-endian and row-major; a BYTES element is a
 * 4-byte little-endian length followed by that many bytes.
 *
 * @module
 */
import { ClassifierError } from "../../errors.ts";

const bad = (message: string) => new ClassifierError("bad_request", message);

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The two parts of a request body. */
export interface SplitBody {
  /** The JSON header (the whole body without the extension). */
  header: Uint8Array;
  /** The binary data after it; empty without the extension. */
  binary: Uint8Array;
}

/**
 * Splits a body at `headerLength` (the `Inference-Header-Content-Length`
 * value, when the request has one).
 *
 * @example
 * ```ts
 * const { header, binary } = splitBody(body, 212);
 * ```
 */
export function splitBody(body: Uint8Array, headerLength?: number): SplitBody {
  if (headerLength === undefined) return { header: body, binary: body.subarray(body.length) };
  if (headerLength > body.length) {
    throw bad(
      `Cannot read the inference request: Inference-Header-Content-Length is ${headerLength} ` +
        `but the body has ${body.length} bytes`,
    );
  }
  return { header: body.subarray(0, headerLength), binary: body.subarray(headerLength) };
}

/**
 * Reads `bytes` as little-endian FP32 values: x: [bytes.length / 4].
 *
 * @example
 * ```ts
 * readFloat32LE(new Uint8Array([0, 0, 128, 63])); // Float32Array [1]
 * ```
 */
export function readFloat32LE(bytes: Uint8Array): Float32Array {
  if (bytes.length % 4 !== 0) throw new RangeError("Cannot read FP32 values: length is not 4n");
  if (LITTLE_ENDIAN_HOST) return new Float32Array(bytes.slice().buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/**
 * Writes FP32 values as little-endian bytes.
 *
 * @example
 * ```ts
 * writeFloat32LE(new Float32Array([1])); // Uint8Array [0, 0, 128, 63]
 * ```
 */
export function writeFloat32LE(values: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) {
    return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  }
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
  return out;
}

/**
 * Reads BYTES elements, each a 4-byte little-endian length and its bytes;
 * `what` names the tensor in error messages. More than `max` elements is a
 * 413, found without reading past element `max`.
 *
 * @example
 * ```ts
 * readBytesElements(new Uint8Array([2, 0, 0, 0, 104, 105]), "image"); // [Uint8Array [104, 105]]
 * ```
 */
export function readBytesElements(bytes: Uint8Array, what: string, max = Infinity): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const elements: Uint8Array[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (elements.length === max) {
      throw new ClassifierError(
        "payload_too_large",
        `Cannot run inference: ${what} carries more than ${max} elements; send at most ${max} ` +
          "per request",
      );
    }
    if (offset + 4 > bytes.length) {
      throw bad(
        `Cannot read ${what}: BYTES element ${elements.length} is truncated ` +
          `(its 4-byte length prefix has ${bytes.length - offset})`,
      );
    }
    const length = view.getUint32(offset, true);
    offset += 4;
    if (offset + length > bytes.length) {
      throw bad(
        `Cannot read ${what}: BYTES element ${elements.length} is truncated ` +
          `(${length} bytes announced, ${bytes.length - offset} present)`,
      );
    }
    elements.push(bytes.subarray(offset, offset + length));
    offset += length;
  }
  return elements;
}

/**
 * Concatenates a JSON header and binary parts into one body.
 *
 * @example
 * ```ts
 * const { body, headerLength } = joinBody({ outputs: [] }, [bytes]);
 * ```
 */
export function joinBody(
  header: unknown,
  parts: readonly Uint8Array[],
): { body: Uint8Array<ArrayBuffer>; headerLength: number } {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const body = new Uint8Array(json.length + parts.reduce((n, p) => n + p.length, 0));
  body.set(json);
  let offset = json.length;
  for (const p of parts) {
    body.set(p, offset);
    offset += p.length;
  }
  return { body, headerLength: json.length };
}
