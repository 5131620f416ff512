/**
 * Turning a row of scores into ranked predictions.
 *
 * @module
 */

/** One ranked class. */
export interface Prediction {
  index: number;
  label: string;
  score: number;
}

/**
 * Numerically stable softmax of one row (subtracts the max before exp).
 *
 * @example
 * ```ts
 * softmax(new Float32Array([0, 0])); // Float32Array [0.5, 0.5]
 * ```
 */
export function softmax(logits: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  const out = new Float32Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/**
 * The `k` highest scores, highest first; ties keep the lower class index first.
 *
 * @example
 * ```ts
 * topK(new Float32Array([0.1, 0.7, 0.2]), 2, ["a", "b", "c"]);
 * // [{ index: 1, label: "b", score: 0.7 }, { index: 2, label: "c", score: 0.2 }]
 * ```
 */
export function topK(scores: Float32Array, k: number, labels: readonly string[]): Prediction[] {
  const order = Array.from(scores.keys());
  order.sort((a, b) => scores[b] - scores[a] || a - b);
  return order.slice(0, Math.min(k, scores.length)).map((index) => ({
    index,
    label: labels[index] ?? `class ${index}`,
    score: scores[index],
  }));
}
