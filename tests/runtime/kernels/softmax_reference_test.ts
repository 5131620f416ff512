/**
 * softmaxLastAxis against a reference written another way, beside it here: the
 * definition in log-sum-exp form, y = exp(x - logsumexp(x)), the sum taken over the
 * terms in ascending order (src/runtime/kernels/softmax.ts divides by a sum taken in
 * index order). Both work in float64, so once rounded to float32 they agree to 1 ulp.
 *
 * @module
 */
import assert from "node:assert/strict";
import { softmaxLastAxis } from "../../../src/runtime/kernels/softmax.ts";
import { randomFloats } from "./_q_helpers.ts";

/** Softmax of one row from the definition: exp(x_i - m - log(sum_j exp(x_j - m))), m = max x. */
function softmaxRowReference(row: Float32Array): Float64Array {
  if (row.some((v) => Number.isNaN(v) || v === Infinity)) {
    return new Float64Array(row.length).fill(NaN);
  }
  const m = Math.max(...row);
  const terms = Array.from(row, (v) => Math.exp(v - m)).sort((a, b) => a - b);
  const logSum = Math.log(terms.reduce((a, b) => a + b, 0));
  return Float64Array.from(row, (v) => Math.exp(v - m - logSum));
}

/** Float32 ulps between a and b (both finite, same sign or zero). */
function ulps(a: number, b: number): number {
  const bits = (v: number) => new Int32Array(Float32Array.of(v).buffer)[0];
  return Math.abs(bits(a) - bits(b));
}

Deno.test("softmax equals the log-sum-exp reference to 1 float32 ulp on random rows", () => {
  let exact = 0;
  let total = 0;
  for (
    const [n, k, spread] of [[1, 1000, 30], [4, 1000, 2], [3, 7, 100], [2, 1, 5], [2, 4096, 60]]
  ) {
    const x = randomFloats(n * k, 7 * k + spread, -spread, spread);
    const ours = softmaxLastAxis(x, k);
    for (let r = 0; r < n; r++) {
      const want = softmaxRowReference(x.subarray(r * k, (r + 1) * k));
      for (let i = 0; i < k; i++) {
        const got = ours[r * k + i];
        const d = ulps(got, Math.fround(want[i]));
        assert.ok(
          d <= 1,
          `[${n}, ${k}] row ${r} at ${i}: ${got}, reference ${want[i]} (${d} ulps)`,
        );
        if (d === 0) exact++;
        total++;
      }
    }
  }
  // Rounding to float32 hides the float64 differences almost everywhere.
  assert.ok(exact / total > 0.99, `${exact} of ${total} exact`);
});

Deno.test("softmax follows the reference at the edges: -Infinity, +Infinity, NaN, huge and tied logits", () => {
  const rows = [
    [0, -Infinity, 0, -Infinity], // -Infinity gets exactly 0
    [3.4e38, 3.4e38, -3.4e38, 0], // huge logits stay finite
    [1, Infinity, 0, 2], // +Infinity: NaN
    [NaN, 0, 1, 2], // NaN: NaN
    [-1e30, -1e30, -1e30, -1e30], // ties: exactly a quarter each
    [88.7, 0, -88.7, -103], // exp(x - max) underflows to 0 for the last
  ];
  const x = Float32Array.from(rows.flat());
  const ours = softmaxLastAxis(x, 4);
  rows.forEach((row, r) => {
    const want = softmaxRowReference(Float32Array.from(row));
    for (let i = 0; i < 4; i++) {
      const got = ours[r * 4 + i];
      const w = Math.fround(want[i]);
      if (Number.isNaN(w)) assert.ok(Number.isNaN(got), `row ${r} at ${i}: ${got}, want NaN`);
      else assert.ok(ulps(got, w) <= 1, `row ${r} at ${i}: ${got}, reference ${want[i]}`);
    }
  });
  assert.deepEqual(Array.from(ours.subarray(0, 4)), [0.5, 0, 0.5, 0]);
  assert.deepEqual(Array.from(ours.subarray(16, 20)), [0.25, 0.25, 0.25, 0.25]);
});
