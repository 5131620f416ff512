/**
 * Shared test helpers for the image path: fixtures, seeded random images and
 * a tolerance check that prints the first mismatches.
 *
 * @module
 */
import { AssertionError } from "node:assert/strict";
import type { DecodedImage } from "../../src/image/mod.ts";
import { mulberry32 } from "../../src/graph/weights.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url);

/** Reads a file from tests/fixtures. */
export function fixture(name: string): Promise<Uint8Array> {
  return Deno.readFile(new URL(name, FIXTURES));
}

/** A small seeded PRNG (mulberry32, the synthetic weights' own) so "random" tests repeat. */
export const rng = mulberry32;

/** A width x height image of random RGBA bytes. */
export function randomImage(width: number, height: number, random: () => number): DecodedImage {
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(random() * 256);
  return { width, height, data };
}

/** An image whose pixel (x, y) is `f(x, y)` as [R, G, B] (alpha 255). */
export function imageFrom(
  width: number,
  height: number,
  f: (x: number, y: number) => [number, number, number],
): DecodedImage {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      data.set([...f(x, y), 255], (y * width + x) * 4);
    }
  }
  return { width, height, data };
}

/**
 * Asserts |actual - expected| <= atol + rtol * |expected| element-wise; on
 * failure lists the first mismatches and the largest error.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol = 0, rtol = 0, label = "values" }: { atol?: number; rtol?: number; label?: string } = {},
): void {
  if (actual.length !== expected.length) {
    throw new AssertionError({
      message: `${label}: length ${actual.length}, expected ${expected.length}`,
    });
  }
  const bad: string[] = [];
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    worst = Math.max(worst, err);
    if (!(err <= atol + rtol * Math.abs(expected[i]))) {
      if (bad.length < 5) bad.push(`[${i}] ${actual[i]} vs ${expected[i]}`);
      else if (bad.length === 5) bad.push("...");
    }
  }
  if (bad.length > 0) {
    throw new AssertionError({
      message: `${label} differ (atol ${atol}, rtol ${rtol}, max error ${worst}):\n  ` +
        bad.join("\n  "),
    });
  }
}

/** Largest and mean absolute difference of two equally long arrays. */
export function diffStats(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
): { max: number; mean: number } {
  let max = 0, sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / a.length };
}
