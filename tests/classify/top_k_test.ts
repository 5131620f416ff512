import assert from "node:assert/strict";
import { softmax, topK } from "../../src/classify/mod.ts";

Deno.test("topK returns the highest scores first with labels", () => {
  const scores = new Float32Array([0.1, 0.5, 0.05, 0.35]);
  assert.deepEqual(topK(scores, 2, ["a", "b", "c", "d"]).map((p) => [p.index, p.label]), [
    [1, "b"],
    [3, "d"],
  ]);
});

Deno.test("topK breaks ties by the lower index and caps k at the class count", () => {
  const p = topK(new Float32Array([0.25, 0.25, 0.25, 0.25]), 10, []);
  assert.deepEqual(p.map((x) => x.index), [0, 1, 2, 3]);
  assert.equal(p[0].label, "class 0");
});

Deno.test("softmax sums to 1 and survives large logits", () => {
  const p = softmax(new Float32Array([1000, 1001, 999]));
  assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-6);
  assert.ok(p[1] > p[0] && p[0] > p[2]);
  assert.ok(p.every(Number.isFinite));
});
