/**
 * Counts an inference request's elements while its JSON streams in, so that a
 * batch over the cap is refused from its first kilobytes instead of after
 * 10 MB were read, decoded and parsed on the server's thread (the parse of
 * 136,000 BYTES elements costs tens of milliseconds that every other request
 * waits for). It is not a parser: it tracks only strings, nesting and array
 * elements, which is enough to bound what `JSON.parse` will be asked to build.
 *
 * In an inference request, arrays of strings are BYTES data and arrays of
 * numbers are FP32 data or shapes, so the counts bound the elements whatever
 * the shape claims and in whatever order the keys come.
 *
 * @module
 */
import { ClassifierError } from "../../errors.ts";

/** Bounds of {@linkcode JsonElementCount}. */
export interface JsonCountLimits {
  /** Most images or tensors in one request (`--max-batch`): the most strings in arrays. */
  maxBatch: number;
  /** Values in one tensor of the model's input, 3 x H x W: with `maxBatch`, the most scalars. */
  tensorValues: number;
  /** Deepest nesting of arrays and objects. */
  maxDepth: number;
}

/** Scalars allowed beside the tensors' values: the shapes' dimensions. */
const SHAPE_SLACK = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const ARRAY = 1;
const OBJECT = 2;

/**
 * A streaming count of a JSON document's array elements; {@linkcode push}
 * each chunk as it arrives, and it throws (413, or 400 for nesting) the
 * moment a bound is passed. Malformed JSON is left for the parser to refuse.
 *
 * @example
 * ```ts
 * const count = new JsonElementCount({ maxBatch: 16, tensorValues: 3 * 224 * 224, maxDepth: 8 });
 * count.push(chunk); // throws a ClassifierError at the 17th string element
 * ```
 */
export class JsonElementCount {
  strings = 0;
  scalars = 0;
  readonly #limits: JsonCountLimits;
  readonly #maxScalars: number;
  readonly #stack: Uint8Array;
  #depth = 0;
  #inString = false;
  #escaped = false;
  /** The next non-space byte starts an array element. */
  #elementNext = false;
  /** Where the chunk's next backslash is (-1: not searched yet in this chunk). */
  #backslash = -1;
  /** Bytes still to count; after them (a binary part) nothing is JSON. */
  #left: number;

  /** `length`: the JSON's length when binary data follows it (the header's), else unbounded. */
  constructor(limits: JsonCountLimits, length = Infinity) {
    this.#limits = limits;
    this.#maxScalars = limits.maxBatch * limits.tensorValues + SHAPE_SLACK;
    this.#stack = new Uint8Array(limits.maxDepth + 1);
    this.#left = length;
  }

  /** Counts one chunk of the body. */
  push(chunk: Uint8Array): void {
    if (this.#left <= 0) return;
    const end = Math.min(chunk.length, this.#left);
    this.#left -= end;
    this.#backslash = -1;
    let i = 0;
    while (i < end) {
      i = this.#inString ? this.#skipString(chunk, i, end) : this.#token(chunk, i, end);
    }
  }

  /**
   * Past the string's closing quote, or `end` when the chunk ends inside it.
   * Native searches for the quote and the next backslash keep long strings
   * (base64 images) at memory speed.
   */
  #skipString(chunk: Uint8Array, i: number, end: number): number {
    if (this.#escaped) {
      this.#escaped = false;
      i++;
    }
    while (i < end) {
      const quote = chunk.indexOf(QUOTE, i);
      if (this.#backslash !== Infinity && this.#backslash < i) {
        const b = chunk.indexOf(BACKSLASH, i);
        this.#backslash = b < 0 ? Infinity : b;
      }
      const close = quote < 0 || quote >= end ? end : quote;
      if (this.#backslash < close) {
        // An escape: skip the byte it escapes, which may be in the next chunk.
        i = this.#backslash + 2;
        if (i > end) this.#escaped = true;
        continue;
      }
      if (close === end) return end;
      this.#inString = false;
      return close + 1;
    }
    return end;
  }

  /** One token outside strings, from `i`; returns where to go on. */
  #token(chunk: Uint8Array, i: number, end: number): number {
    const b = chunk[i];
    if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) return i + 1;
    const element = this.#elementNext;
    this.#elementNext = false;
    switch (b) {
      case QUOTE:
        this.#inString = true;
        if (element && ++this.strings > this.#limits.maxBatch) throw this.#tooMany("strings");
        return i + 1;
      case 0x5b: // [
        this.#open(ARRAY);
        this.#elementNext = true;
        return i + 1;
      case 0x7b: // {
        this.#open(OBJECT);
        return i + 1;
      case 0x5d: // ]
      case 0x7d: // }
        if (this.#depth > 0) this.#depth--;
        return i + 1;
      case 0x2c: // ,
        this.#elementNext = this.#stack[this.#depth] === ARRAY;
        return i + 1;
      case 0x3a: // :
        return i + 1;
      default:
        // A number or literal (counted once, at its first byte), skipped to what ends it.
        if (element && ++this.scalars > this.#maxScalars) throw this.#tooMany("scalars");
        return skipScalar(chunk, i + 1, end);
    }
  }

  #open(kind: number): void {
    if (this.#depth === this.#limits.maxDepth) {
      throw new ClassifierError(
        "bad_request",
        `Cannot read the inference request: it nests deeper than ${this.#limits.maxDepth} levels`,
      );
    }
    this.#stack[++this.#depth] = kind;
  }

  #tooMany(what: "strings" | "scalars"): ClassifierError {
    const { maxBatch } = this.#limits;
    return new ClassifierError(
      "payload_too_large",
      what === "strings"
        ? `Cannot run inference: the request's data holds more than ${maxBatch} strings; ` +
          `send at most ${maxBatch} BYTES images per request (FP32 data are numbers)`
        : `Cannot run inference: the request carries more than ${this.#maxScalars} values, ` +
          `over ${maxBatch} tensors of the model's input; send at most ${maxBatch} per request`,
    );
  }
}

/** Past the rest of a number or literal: up to the next separator, space or end of chunk. */
function skipScalar(chunk: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const b = chunk[i];
    if (b === 0x2c || b === 0x5d || b === 0x7d || b === QUOTE || b <= 0x20) return i;
    i++;
  }
  return end;
}
