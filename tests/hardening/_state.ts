/**
 * A server state on the tiny test model (tests/_helpers.ts), loaded once per
 * test file: inference is cheap, so the hardening tests spend their time on
 * the input path.
 *
 * @module
 */
import type { ServerState } from "../../src/api/mod.ts";
import { loadClassifier } from "../../src/classify/load.ts";
import { writeTinyModel } from "../_helpers.ts";

let state: Promise<ServerState> | undefined;

/** The tiny model's classifier in a ready state (64x48 input, 4 classes). */
export function tinyState(): Promise<ServerState> {
  state ??= writeTinyModel(64, 48).then(async (paths) => ({
    classifier: await loadClassifier(paths),
  }));
  return state;
}
