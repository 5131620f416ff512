/**
 * Prometheus metrics: {@linkcode recordMetrics} counts every request by route
 * pattern and status and times it, /predict's stage timings included;
 * {@linkcode metricsRoutes} answers the scrape in the text format.
 *
 * @module
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { Classification } from "../classify/mod.ts";
import type { ServerState } from "./state.ts";
import { Counter, Gauge, Histogram, PROMETHEUS_CONTENT_TYPE, Registry } from "./_prometheus.ts";

/** The stage timings of one classification, in milliseconds. */
export type StageTimings = Classification["timings_ms"];

const STAGES = ["decode", "preprocess", "inference", "total"] as const;

/** Context variables a handler may set for the metrics. */
interface MetricsVariables {
  /** Overrides the route label ("not_found" from the not-found handler). */
  routeLabel?: string;
  /** Stage timings of a classification answered by this request. */
  timings?: StageTimings;
}

const vars = (c: Context) => c.var as MetricsVariables;

/**
 * Hands a classification's stage timings to the metrics.
 *
 * @example
 * ```ts
 * const result = await classifier.classify(bytes, k);
 * setTimings(c, result.timings_ms);
 * ```
 */
export function setTimings(c: Context, timings: StageTimings): void {
  c.set("timings", timings);
}

/**
 * Names the route of this request for the metrics, overriding the matched
 * pattern (the not-found handler names it "not_found").
 *
 * @example
 * ```ts
 * app.notFound((c) => { setRouteLabel(c, "not_found"); return c.text("no", 404); });
 * ```
 */
export function setRouteLabel(c: Context, label: string): void {
  c.set("routeLabel", label);
}

/**
 * The route label of a request that has been answered: the route pattern
 * that answered it ("/predict", "/v1/models"), "static" for the page's catch-all,
 * "not_found" when no route did. Never the raw path, so the label stays few-valued.
 *
 * @example
 * ```ts
 * await next();
 * routeLabel(c); // "/predict"
 * ```
 */
export function routeLabel(c: Context): string {
  const named = vars(c).routeLabel;
  if (named) return named;
  const route = matchedRoutes(c)[c.req.routeIndex];
  if (!route || route.method === "ALL") return "not_found";
  return route.path === "/*" ? "static" : route.path;
}

/**
 * The server's metric families: counters and histograms recorded as requests
 * are answered, gauges read from the server state when scraped.
 *
 * @example
 * ```ts
 * const metrics = new ServerMetrics();
 * const app = createApp(state, { metrics });
 * metrics.recordModelLoad("alexnet-synthetic", 4.2);
 * metrics.render(state); // "# HELP alexnet_edge_http_requests_total …"
 * ```
 */
export class ServerMetrics {
  readonly registry: Registry = new Registry();
  /** alexnet_edge_http_requests_total{route, status} */
  readonly requests: Counter = this.registry.register(
    new Counter("alexnet_edge_http_requests_total", "HTTP requests answered.", ["route", "status"]),
  );
  /** alexnet_edge_http_request_duration_seconds{route} */
  readonly requestSeconds: Histogram = this.registry.register(
    new Histogram(
      "alexnet_edge_http_request_duration_seconds",
      "Time from request to response, by route pattern.",
      ["route"],
    ),
  );
  /** alexnet_edge_predict_stage_duration_seconds{stage}: decode, preprocess, inference, total. */
  readonly stageSeconds: Histogram = this.registry.register(
    new Histogram(
      "alexnet_edge_predict_stage_duration_seconds",
      "Time of each stage of a classified image (decode, preprocess, inference, total).",
      ["stage"],
    ),
  );
  readonly #queueDepth = this.registry.register(
    new Gauge("alexnet_edge_queue_depth", "Inference runs waiting or in progress.", []),
  );
  /** alexnet_edge_queue_rejections_total: stays 0 until the queue is bounded. */
  readonly rejections: Counter = this.registry.register(
    new Counter(
      "alexnet_edge_queue_rejections_total",
      "Requests turned away because the inference queue was full.",
      [],
    ),
  );
  readonly #ready = this.registry.register(
    new Gauge("alexnet_edge_model_ready", "1 once the model serves, 0 before.", []),
  );
  readonly #info = this.registry.register(
    new Gauge(
      "alexnet_edge_model_info",
      "The loaded model; always 1.",
      ["model", "precision", "backend"],
    ),
  );
  readonly #loadSeconds = this.registry.register(
    new Gauge("alexnet_edge_model_load_seconds", "Time the model took to load.", ["model"]),
  );
  readonly #rss = this.registry.register(
    new Gauge("process_resident_memory_bytes", "Resident memory size in bytes.", []),
  );
  readonly #start = this.registry.register(
    new Gauge("process_start_time_seconds", "Start time of the process since the epoch.", []),
  );
  readonly #uptime = this.registry.register(
    new Gauge("alexnet_edge_uptime_seconds", "Time since the process started.", []),
  );
  #load?: { model: string; seconds: number };

  /**
   * Records how long loading `model` took.
   *
   * Queue rejections, once the queue is bounded, are counted with
   * `metrics.rejections.inc()`.
   */
  recordModelLoad(model: string, seconds: number): void {
    this.#load = { model, seconds };
  }

  /** Counts one answered request; `timings` when it classified an image. */
  recordRequest(route: string, status: number, seconds: number, timings?: StageTimings): void {
    this.requests.inc({ route, status: String(status) });
    this.requestSeconds.observe(seconds, { route });
    if (!timings) return;
    for (const stage of STAGES) this.stageSeconds.observe(timings[stage] / 1000, { stage });
  }

  /** Every metric in the text format, the gauges read from `state` and the process now. */
  render(state: ServerState): string {
    const classifier = state.classifier;
    this.#queueDepth.set(classifier?.queueDepth ?? 0);
    this.#ready.set(classifier ? 1 : 0);
    this.#info.clear();
    if (classifier) {
      const { info } = classifier;
      this.#info.set(1, {
        model: info.name,
        precision: info.precision,
        backend: info.backend.name,
      });
    }
    this.#loadSeconds.clear();
    if (this.#load) this.#loadSeconds.set(this.#load.seconds, { model: this.#load.model });
    const rss = globalThis.Deno?.memoryUsage?.().rss;
    if (rss !== undefined) this.#rss.set(rss);
    this.#start.set(performance.timeOrigin / 1000);
    this.#uptime.set(performance.now() / 1000);
    return this.registry.render();
  }
}

/** Options of {@linkcode recordMetrics}. */
export interface RecordMetricsOptions {
  /** Where the counts go. */
  metrics: ServerMetrics;
}

/**
 * Middleware counting and timing every request into `metrics`.
 *
 * @example
 * ```ts
 * const metrics = new ServerMetrics();
 * app.use(recordMetrics({ metrics }));
 * app.route("/metrics", metricsRoutes(state, metrics));
 * ```
 */
export function recordMetrics(options: RecordMetricsOptions): MiddlewareHandler {
  const { metrics } = options;
  return async function recordMetrics(c, next) {
    const start = performance.now();
    await next();
    const seconds = (performance.now() - start) / 1000;
    metrics.recordRequest(routeLabel(c), c.res.status, seconds, vars(c).timings);
  };
}

/**
 * `GET /`: the scrape, to mount where configured (default /metrics).
 *
 * @example
 * ```ts
 * app.route("/metrics", metricsRoutes(state, metrics));
 * ```
 */
export function metricsRoutes(state: ServerState, metrics: ServerMetrics): Hono {
  return new Hono().get(
    "/",
    (c) => c.body(metrics.render(state), 200, { "content-type": PROMETHEUS_CONTENT_TYPE }),
  );
}
