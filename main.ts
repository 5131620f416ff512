/**
 * Entry point (also the deploy entrypoint): reads the configuration, serves
 * at once, and loads the model in the background; /readyz turns 200 when it
 * is ready. SIGTERM or SIGINT drains: new requests get 503 (Connection:
 * close), the requests in flight finish (at most --request-timeout plus 5 s),
 * then Deno.serve's shutdown closes the listener and the process exits 0.
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
  const { maxBodyBytes, metricsPath, maxPixels, maxQueue, requestTimeoutMs, corsOrigins } = config;
  const app = createApp(state, {
    maxBodyBytes,
    metricsPath,
    metrics,
    logger,
    maxPixels,
    maxQueue,
    requestTimeoutMs,
    corsOrigins,
  });
  // Whatever a request or a background task leaves uncaught is logged, never fatal.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    logger.error("Unhandled rejection", { error: event.reason });
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    logger.error("Uncaught exception", { error: event.error });
  });
  // Requests in flight, and whether the server is draining before its shutdown.
  let inFlight = 0;
  let stopping = false;
  const serve = async (request: Request, info: Deno.ServeHandlerInfo): Promise<Response> => {
    if (stopping) {
      const error = { code: "not_ready", message: "Cannot serve: the server is shutting down" };
      return Response.json({ error }, {
        status: 503,
        headers: { "retry-after": "1", connection: "close" },
      });
    }
    inFlight++;
    try {
      return await app.fetch(request, info);
    } finally {
      inFlight--;
    }
  };
  const server = Deno.serve({
    port: config.port,
    hostname: config.hostname,
    onListen: ({ hostname, port }) =>
      logger.info(`Listening on http://${hostname}:${port}/`, {
        hostname,
        port,
        metrics_path: metricsPath,
      }),
  }, serve);
  // Deno.serve's shutdown() stops reading the bodies of requests still uploading, so it
  // comes only once the requests in flight have finished.
  const stop = async (signal: Deno.Signal) => {
    if (stopping) return;
    stopping = true;
    logger.info(`Received ${signal}: finishing the requests in flight, then exiting`, {
      signal,
      in_flight: inFlight,
    });
    const deadline = performance.now() + requestTimeoutMs + 5_000;
    while (inFlight > 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    const drained = inFlight === 0;
    if (!drained) logger.warn("Cannot finish the requests in flight in time: exiting anyway");
    await server.shutdown();
    await state.classifier?.release().catch(() => {});
    logger.info("Stopped");
    Deno.exit(drained ? 0 : 1);
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    try {
      Deno.addSignalListener(signal, () => void stop(signal));
    } catch {
      // Windows has no SIGTERM; Ctrl-C still stops the process.
    }
  }

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
