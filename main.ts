/**
 * Entry point (also the Deno Deploy entrypoint): reads the configuration and
 * serves at once; the model loads in the background (src/server.ts) and
 * /readyz turns 200 when it is ready. SIGTERM or SIGINT drains: new requests
 * get 503 (Connection: close), the requests in flight finish (at most
 * --request-timeout plus 5 s), then Deno.serve's shutdown closes the listener
 * and the process exits 0.
 *
 * @module
 */
import { createLogger } from "./src/api/mod.ts";
import { parseConfig } from "./src/config.ts";
import { createServer } from "./src/server.ts";

if (import.meta.main) {
  let config;
  try {
    config = parseConfig(Deno.args, (k) => Deno.env.get(k));
  } catch (e) {
    createLogger().error((e as Error).message);
    Deno.exit(2);
  }
  const logger = createLogger({ level: config.logLevel });
  // Whatever a request or a background task leaves uncaught is logged, never fatal.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    logger.error("Unhandled rejection", { error: event.reason });
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    logger.error("Uncaught exception", { error: event.error });
  });
  const app = createServer(config, { logger });
  const server = Deno.serve({
    port: config.port,
    hostname: config.hostname,
    onListen: ({ hostname, port }) =>
      logger.info(`Listening on http://${hostname}:${port}/`, {
        hostname,
        port,
        metrics_path: config.metricsPath,
      }),
  }, app.fetch);
  // Deno.serve's shutdown() stops reading the bodies of requests still uploading, so it
  // comes only once the requests in flight have finished.
  let stopping = false;
  const stop = async (signal: Deno.Signal) => {
    if (stopping) return;
    stopping = true;
    logger.info(`Received ${signal}: finishing the requests in flight, then exiting`, {
      signal,
      in_flight: app.inFlight,
    });
    const drained = await app.drain(config.requestTimeoutMs + 5_000);
    // shutdown() waits for every request in flight: after a drain that gave up it never ends.
    if (drained) await server.shutdown();
    else logger.warn("Cannot finish the requests in flight in time: exiting anyway");
    await app.state.classifier?.release().catch(() => {});
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
}
