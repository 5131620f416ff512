import assert from "node:assert/strict";
import { Slots } from "../../src/api/_slots.ts";

Deno.test("places are given in arrival order, and a release passes straight to the next", async () => {
  const slots = new Slots(1);
  const first = slots.tryTake()!;
  assert.equal(slots.tryTake(), undefined, "no second place at once");
  const order: string[] = [];
  const a = slots.take().then((release) => (order.push("a"), release));
  const b = slots.take().then((release) => (order.push("b"), release));
  assert.equal(slots.waiting, 2);
  first();
  first(); // a second call gives nothing back twice
  (await a)();
  (await b)();
  assert.deepEqual(order, ["a", "b"]);
  assert.equal(slots.held, 0);
});

Deno.test("a waiter whose signal aborts leaves the line and never holds a place", async () => {
  const slots = new Slots(1);
  const held = slots.tryTake()!;
  const leaving = new AbortController();
  const gone = slots.take(leaving.signal);
  const next = slots.take();
  leaving.abort(new Error("client left"));
  await assert.rejects(gone, /client left/);
  assert.equal(slots.waiting, 1);
  held();
  const release = await next;
  assert.equal(slots.held, 1);
  release();
  assert.equal(slots.held, 0);
  await assert.rejects(slots.take(AbortSignal.abort(new Error("already"))), /already/);
  assert.throws(() => new Slots(0), RangeError);
});
