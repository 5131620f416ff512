import assert from "node:assert/strict";
import { readBody } from "../../src/api/_body.ts";
import { ClassifierError } from "../../src/errors.ts";

const limits = { maxBytes: 1000, idleMs: 100, totalMs: 400 };

/** A stream of `chunks`, one every `everyMs`, then (with `stall`) nothing more; counts cancels. */
function chunked(chunks: Uint8Array[], everyMs = 0, stall = false) {
  let cancelled = 0;
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (everyMs) await new Promise((r) => setTimeout(r, everyMs));
      if (i < chunks.length) controller.enqueue(chunks[i++]);
      else if (stall) await new Promise(() => {});
      else controller.close();
    },
    cancel() {
      cancelled++;
    },
  });
  return { stream, cancelled: () => cancelled };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return e instanceof ClassifierError ? e.code : String(e);
  }
  return "ok";
}

Deno.test("a body within its bounds is read whole, byte for byte", async () => {
  const parts = [new Uint8Array([1, 2]), new Uint8Array([3]), new Uint8Array(500).fill(9)];
  const body = await readBody(chunked(parts, 5).stream, limits);
  assert.equal(body.length, 503);
  assert.deepEqual([...body.subarray(0, 4)], [1, 2, 3, 9]);
});

Deno.test("a body over maxBytes is 413, a declared one before any read, and the stream cancelled", async () => {
  const big = chunked([new Uint8Array(600), new Uint8Array(600)]);
  assert.equal(await codeOf(readBody(big.stream, limits)), "payload_too_large");
  assert.equal(big.cancelled(), 1);
  const declared = chunked([new Uint8Array(1)]);
  assert.equal(
    await codeOf(readBody(declared.stream, { ...limits, declared: 1001 })),
    "payload_too_large",
  );
});

Deno.test("a pause over idleMs and a read over totalMs are 408, the stream cancelled", async () => {
  const stalled = chunked([new Uint8Array(3)], 0, true);
  assert.equal(await codeOf(readBody(stalled.stream, limits)), "request_timeout");
  assert.equal(stalled.cancelled(), 1);
  // Never idle for 300 ms, but 20 chunks 50 ms apart take 1 s: the 400 ms deadline cuts it.
  const trickle = chunked(Array.from({ length: 20 }, () => new Uint8Array(1)), 50);
  const error = await readBody(trickle.stream, { ...limits, idleMs: 300 }).catch((e) => e);
  assert.equal(error.code, "request_timeout");
  assert.match(error.message, /the body took over 400 ms/);
});

Deno.test("an aborted signal ends the read with its reason", async () => {
  const stalled = chunked([new Uint8Array(3)], 0, true);
  const client = new AbortController();
  const reading = readBody(stalled.stream, { ...limits, idleMs: 10_000, signal: client.signal });
  client.abort(new Error("client left"));
  await assert.rejects(reading, /client left/);
  assert.equal(stalled.cancelled(), 1);
});
