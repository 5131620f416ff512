import assert from "node:assert/strict";
import { JsonElementCount } from "../../src/api/v2/_json_count.ts";
import { ClassifierError } from "../../src/errors.ts";
import { mulberry32 } from "../../src/graph/weights.ts";

const LIMITS = { maxBatch: 1e9, tensorValues: 1, maxDepth: 64 };

/** The reference: strings and scalars that are array elements, counted on the parsed value. */
function referenceCount(value: unknown, inArray = false, out = { strings: 0, scalars: 0 }) {
  if (Array.isArray(value)) value.forEach((v) => referenceCount(v, true, out));
  else if (value !== null && typeof value === "object") {
    Object.values(value).forEach((v) => referenceCount(v, false, out));
  } else if (inArray) {
    if (typeof value === "string") out.strings++;
    else out.scalars++;
  }
  return out;
}

/** A random JSON value whose strings hold the bytes that could confuse a counter. */
function randomValue(rand: () => number, depth: number): unknown {
  const r = rand();
  if (depth > 0 && r < 0.3) {
    return Array.from({ length: Math.floor(rand() * 6) }, () => randomValue(rand, depth - 1));
  }
  if (depth > 0 && r < 0.5) {
    const keys = ["data", 'sha"pe', "a,b", "[x]", "{y}", "\\"];
    return Object.fromEntries(
      keys.slice(0, Math.floor(rand() * 4)).map((k) => [k, randomValue(rand, depth - 1)]),
    );
  }
  const pieces = ['"', "\\", "[", "]", "{", "}", ",", ":", " ", "é", "\u2028", "\n", "a"];
  if (r < 0.7) {
    return Array.from({ length: Math.floor(rand() * 5) }, () => pieces[Math.floor(rand() * 13)])
      .join("");
  }
  return [-1.5e-7, 0, 42, true, false, null][Math.floor(rand() * 6)];
}

/** Pushes `bytes` in chunks cut at random places (single bytes included). */
function pushInChunks(count: JsonElementCount, bytes: Uint8Array, rand: () => number) {
  for (let at = 0; at < bytes.length;) {
    const size = 1 + Math.floor(rand() * (rand() < 0.5 ? 3 : 40));
    count.push(bytes.subarray(at, at + size));
    at += size;
  }
}

Deno.test("the streaming count agrees with a count on the parsed JSON, however the bytes are cut", () => {
  const rand = mulberry32(7);
  for (let i = 0; i < 500; i++) {
    const value = { inputs: [randomValue(rand, 5)], data: randomValue(rand, 4) };
    const text = JSON.stringify(value, null, rand() < 0.5 ? 1 : undefined);
    const count = new JsonElementCount(LIMITS);
    pushInChunks(count, new TextEncoder().encode(text), rand);
    assert.deepEqual(
      { strings: count.strings, scalars: count.scalars },
      referenceCount(value),
      text,
    );
  }
});

Deno.test("a request over the batch cap is refused at the first element past it", () => {
  const count = new JsonElementCount({ maxBatch: 2, tensorValues: 3, maxDepth: 8 });
  const strings = new TextEncoder().encode('{"inputs":[{"data":["a","b","c"');
  assert.throws(() => count.push(strings), (e: ClassifierError) => {
    assert.equal(e.code, "payload_too_large");
    assert.match(e.message, /more than 2 strings/);
    return true;
  });
  // 2 tensors of 3 values and the shapes' 64 dimensions fit; one value more does not.
  const fits = `{"shape":[2,3],"data":[${Array(2 * 3 + 62).fill(0).join(",")}`;
  const ok = new JsonElementCount({ maxBatch: 2, tensorValues: 3, maxDepth: 8 });
  ok.push(new TextEncoder().encode(fits));
  assert.equal(ok.scalars, 70);
  assert.throws(() => ok.push(new TextEncoder().encode(",1")), /more than 70 values/);
});

Deno.test("nesting deeper than the limit is refused with 400; bytes after the JSON header are not counted", () => {
  const deep = new JsonElementCount({ maxBatch: 16, tensorValues: 1, maxDepth: 3 });
  deep.push(new TextEncoder().encode("[[["));
  assert.throws(() => deep.push(new TextEncoder().encode("[")), (e: ClassifierError) => {
    assert.equal(e.code, "bad_request");
    return true;
  });
  const header = new TextEncoder().encode('{"data":["a"]}');
  const withBinary = new JsonElementCount(
    { maxBatch: 1, tensorValues: 1, maxDepth: 8 },
    header.length,
  );
  withBinary.push(header);
  withBinary.push(new TextEncoder().encode('["b","c","d"]'));
  assert.equal(withBinary.strings, 1);
});
