/**
 * Seeded synthetic weights. Deterministic for a seed, so tests, benchmarks and
 * every machine see the same model; scaled (He-uniform) so activations keep
 * their spread through ReLU layers instead of vanishing or exploding.
 *
 * @module
 */

/**
 * A small, fast, seeded PRNG (mulberry32): 32-bit state, uniform floats in [0, 1).
 *
 * @example
 * ```ts
 * const next = mulberry32(42);
 * next(); // 0.6011...
 * ```
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * He-uniform values for a layer with `fanIn` inputs per output: U(-b, b) with
 * b = gain * sqrt(6 / fanIn), whose variance 2 / fanIn keeps a ReLU network's
 * activation variance roughly constant from layer to layer.
 *
 * @example
 * ```ts
 * const w = heUniform(96 * 3 * 11 * 11, 3 * 11 * 11, mulberry32(1));
 * ```
 */
export function heUniform(
  count: number,
  fanIn: number,
  random: () => number,
  gain = 1,
): Float32Array {
  const bound = gain * Math.sqrt(6 / fanIn);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (2 * random() - 1) * bound;
  return out;
}
