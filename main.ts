/**
 * Entry point (also the deploy entrypoint): reads the configuration, serves
 * at once, and loads the model in the background; /readyz turns 200 when it
 * is ready.
 *
 * @module
 */
import { createApp, type ServerState } from "./src/api/mod.ts";
import { loadClassifier } from "./src/classify/load.ts";
import { parseConfig } from "./src/config.ts";

const log = (line: string) => console.log(`[alexnet-edge] ${line}`);

if (import.meta.main) {
  let config;
  try {
    config = parseConfig(Deno.args, (k) => Deno.env.get(k));
  } catch (e) {
    console.error(`[alexnet-edge] ${(e as Error).message}`);
    Deno.exit(2);
  }
  const state: ServerState = {};
  const app = createApp(state, { maxBodyBytes: config.maxBodyBytes });
  Deno.serve({
    port: config.port,
    hostname: config.hostname,
    onListen: ({ hostname, port }) => log(`Listening on http://${hostname}:${port}/`),
  }, app.fetch);

  const started = performance.now();
  loadClassifier({ ...config, log }).then((classifier) => {
    state.classifier = classifier;
    const { name, weights, backend, parameters } = classifier.info;
    log(
      `Model ${name} ready in ${Math.round(performance.now() - started)} ms: ` +
        `${parameters} parameters, ${weights.kind} weights, ${backend.name} backend, ` +
        `${backend.threads} threads`,
    );
    if (weights.notice) log(weights.notice);
  }, (e) => {
    state.loadError = (e as Error).message;
    log(`Cannot load the model: ${state.loadError}`);
  });
}
