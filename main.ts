/**
 * Entry point (also the deploy entrypoint): reads the configuration, serves
 * at once, and loads the model in the background; /readyz turns 200 when it
 * is ready.
 *
 * @module
 */
import { createApp, createLogger, ServerMetrics, type ServerState } from "./src/api/mod.ts";
import { loadClassifier } from "./src/classify/load.ts";
import { chooseStartupModel } from "./src/model/fetch_startup.ts";
import { parseConfig } from "./src/config.ts";

if (import.meta.main) {
  let config;
  try {
    config = parseConfig(Deno.args, (k) => Deno.env.get(k));
  } catch (e) {
    createLogger().error((e as Error).message);
    Deno.exit(2);
  }
  const logger = createLogger({ level: config.logLevel });
  const log = (line: string) => logger.info(line);
  const state: ServerState = {};
  const metrics = new ServerMetrics();
  const { maxBodyBytes, metricsPath } = config;
  const app = createApp(state, { maxBodyBytes, metricsPath, metrics, logger });
  Deno.serve({
    port: config.port,
    hostname: config.hostname,
    onListen: ({ hostname, port }) =>
      logger.info(`Listening on http://${hostname}:${port}/`, {
        hostname,
        port,
        metrics_path: metricsPath,
      }),
  }, app.fetch);

  const started = performance.now();
  logger.info("Loading the model", {
    model: config.model ?? "synthetic",
    seed: config.model ? undefined : config.seed,
  });
  // Picks the best model in models/ (a first run fetches the int8 zoo AlexNet when a mirror
  // answers within --fetch-timeout, else starts on the synthetic one), then loads it.
  chooseStartupModel({ ...config, log }).then((choice) => {
    logger.info(`Model: ${choice.reason}`, { model: choice.model ?? "synthetic" });
    if (choice.notice) logger.warn(choice.notice);
    return loadClassifier({ ...config, ...choice, log });
  }).then((classifier) => {
    const loadMs = Math.round(performance.now() - started);
    state.classifier = classifier;
    const { info } = classifier;
    const { name, weights, backend, parameters } = info;
    metrics.recordModelLoad(name, loadMs / 1000);
    logger.info(
      `Model ${name} ready in ${loadMs} ms: ` +
        `${parameters} parameters, ${weights.kind} weights, ${backend.name} backend, ` +
        `${backend.threads} threads`,
      {
        model: name,
        load_ms: loadMs,
        parameters,
        weights: weights.kind,
        precision: info.precision,
        backend: backend.name,
        threads: backend.threads,
      },
    );
    if (weights.notice) logger.warn(weights.notice, { model: name });
  }, (e) => {
    state.loadError = (e as Error).message;
    logger.error(`Cannot load the model: ${state.loadError}`, {
      load_ms: Math.round(performance.now() - started),
    });
  });
}
