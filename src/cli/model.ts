/**
 * `deno task model [--seed N]`: writes the synthetic AlexNet and its manifest
 * to models/ (git-ignored).
 *
 * @module
 */
import { parseConfig } from "../config.ts";
import { ensureSyntheticModel } from "../model/store.ts";

if (import.meta.main) {
  const { seed } = parseConfig(Deno.args, (k) => Deno.env.get(k));
  const started = performance.now();
  const url = await ensureSyntheticModel(seed, undefined, console.log);
  console.log(`Model ready (${url.pathname}) in ${Math.round(performance.now() - started)} ms`);
}
