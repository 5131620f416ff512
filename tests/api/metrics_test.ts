import assert from "node:assert/strict";
import { createApp, type ServerState } from "../../src/api/mod.ts";
import { ServerMetrics } from "../../src/api/metrics.ts";
import { Counter, Histogram, Registry } from "../../src/api/_prometheus.ts";
import { loadClassifier } from "../../src/classify/load.ts";
import type { Classifier } from "../../src/classify/mod.ts";
import { fixture, writeTinyModel } from "../_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };

// ---------------------------------------------------------------------------
// A strict parser of the Prometheus text exposition format 0.0.4: it throws
// on anything a Prometheus server would reject, so a test passing through it
// shows the scrape parses.

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Family {
  type: string;
  help?: string;
  samples: Sample[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`);
const LABEL_PAIR = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/;
const TYPES = ["counter", "gauge", "histogram", "summary", "untyped"];

function parseValue(text: string, line: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
    throw new SyntaxError(`bad value in: ${line}`);
  }
  return Number(text);
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest !== "") {
    const m = LABEL_PAIR.exec(rest);
    if (!m) throw new SyntaxError(`bad labels in: ${line}`);
    if (m[1] in labels) throw new SyntaxError(`repeated label ${m[1]} in: ${line}`);
    labels[m[1]] = m[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    rest = rest.slice(m[0].length);
  }
  return labels;
}

/** The family a sample belongs to: histogram samples carry _bucket, _sum, _count. */
function familyOf(name: string, families: Map<string, Family>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    const base = name.slice(0, -suffix.length);
    if (name.endsWith(suffix) && families.get(base)?.type === "histogram") return base;
  }
  return name;
}

function parsePrometheus(text: string): Map<string, Family> {
  if (!text.endsWith("\n")) throw new SyntaxError("the exposition must end with a newline");
  const families = new Map<string, Family>();
  const done = new Set<string>();
  const typed = new Set<string>();
  let current: string | undefined;
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta;
      if (!new RegExp(`^${NAME}$`).test(name)) throw new SyntaxError(`bad name in: ${line}`);
      if (done.has(name)) throw new SyntaxError(`family ${name} is split: ${line}`);
      const family = families.get(name) ?? { type: "untyped", samples: [] };
      if (kind === "TYPE") {
        if (!TYPES.includes(rest)) throw new SyntaxError(`bad type in: ${line}`);
        if (family.samples.length || typed.has(name)) {
          throw new SyntaxError(`TYPE after samples or twice: ${line}`);
        }
        family.type = rest;
        typed.add(name);
      } else {
        if (family.help !== undefined) throw new SyntaxError(`HELP twice: ${line}`);
        family.help = rest;
      }
      families.set(name, family);
      if (current !== undefined && current !== name) done.add(current);
      current = name;
      continue;
    }
    if (line.startsWith("#")) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new SyntaxError(`bad sample line: ${line}`);
    const name = familyOf(m[1], families);
    if (done.has(name)) throw new SyntaxError(`family ${name} is split: ${line}`);
    if (current !== undefined && current !== name) done.add(current);
    current = name;
    const family = families.get(name) ?? { type: "untyped", samples: [] };
    families.set(name, family);
    family.samples.push({
      name: m[1],
      labels: parseLabels(m[2] ?? "", line),
      value: parseValue(m[3], line),
    });
  }
  for (const [name, family] of families) {
    if (family.type === "histogram") checkHistogram(name, family);
  }
  return families;
}

/** Buckets: `le` increasing to +Inf, counts cumulative, +Inf equal to _count. */
function checkHistogram(name: string, family: Family) {
  const series = new Map<string, Sample[]>();
  for (const s of family.samples) {
    const { le: _le, ...rest } = s.labels;
    const key = JSON.stringify(rest);
    series.set(key, [...(series.get(key) ?? []), s]);
  }
  for (const [key, samples] of series) {
    const buckets = samples.filter((s) => s.name === `${name}_bucket`);
    const count = samples.find((s) => s.name === `${name}_count`);
    assert.ok(samples.find((s) => s.name === `${name}_sum`), `${name}${key} has _sum`);
    assert.ok(count, `${name}${key} has _count`);
    assert.ok(
      buckets.length > 0 && buckets.at(-1)!.labels.le === "+Inf",
      `${name}${key} ends at +Inf`,
    );
    for (let i = 1; i < buckets.length; i++) {
      assert.ok(parseValue(buckets[i].labels.le, "") > parseValue(buckets[i - 1].labels.le, ""));
      assert.ok(buckets[i].value >= buckets[i - 1].value, `${name}${key} buckets are cumulative`);
    }
    assert.equal(buckets.at(-1)!.value, count.value, `${name}${key}: +Inf bucket = _count`);
  }
}

/** The value of the one sample named `name` whose labels include `labels`. */
function value(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const family = families.get(familyOf(name, families));
  const matching = (family?.samples ?? []).filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  assert.ok(matching.length <= 1, `${name} ${JSON.stringify(labels)} is one series`);
  return matching[0]?.value;
}

async function scrape(
  app: { request: (path: string) => Response | Promise<Response> },
  path = "/metrics",
) {
  const res = await app.request(path);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  return parsePrometheus(await res.text());
}

let tiny: Promise<Classifier> | undefined;
function tinyClassifier(): Promise<Classifier> {
  tiny ??= writeTinyModel(64, 48).then((paths) => loadClassifier(paths));
  return tiny;
}

// ---------------------------------------------------------------------------

Deno.test("the parser rejects what Prometheus rejects", () => {
  for (
    const bad of [
      "x 1", // no newline at the end
      "x{a=1} 1\n",
      'x{a="1" 1\n',
      "x one\n",
      "# TYPE x counter\nx 1\n# TYPE x counter\n",
      '# TYPE x histogram\nx_bucket{le="1"} 2\nx_bucket{le="+Inf"} 1\nx_sum 1\nx_count 1\n',
      "x 1\ny 1\nx 2\n",
    ]
  ) {
    assert.throws(() => parsePrometheus(bad), Error, JSON.stringify(bad));
  }
});

Deno.test("counters, gauges and histograms render in the text format with escaped labels", () => {
  const registry = new Registry();
  const c = registry.register(new Counter("c_total", "A counter.\nTwo lines.", ["path"]));
  const h = registry.register(
    new Histogram("h_seconds", "A histogram.", ["stage"], [0.001, 0.01, 0.1]),
  );
  registry.register(new Counter("plain_total", "No labels.", []));
  c.inc({ path: 'a "quoted" \\ back\nslash' }, 2);
  h.observe(0.005, { stage: "decode" });
  h.observe(0.05, { stage: "decode" });
  h.observe(5, { stage: "decode" });
  const families = parsePrometheus(registry.render());
  assert.equal(families.get("c_total")!.type, "counter");
  assert.equal(families.get("c_total")!.help, "A counter.\\nTwo lines.");
  assert.equal(value(families, "c_total", { path: 'a "quoted" \\ back\nslash' }), 2);
  assert.equal(value(families, "plain_total"), 0, "a counter without labels starts at 0");
  const bucket = (le: string) => value(families, "h_seconds_bucket", { stage: "decode", le });
  assert.deepEqual(["0.001", "0.01", "0.1", "+Inf"].map(bucket), [0, 1, 2, 3]);
  assert.equal(value(families, "h_seconds_count", { stage: "decode" }), 3);
  assert.equal(value(families, "h_seconds_sum", { stage: "decode" }), 5.055);
  assert.throws(() => c.inc({}), TypeError);
  assert.throws(() => c.inc({ path: "x" }, -1), RangeError);
  assert.throws(() => registry.register(new Counter("c_total", "again", [])), TypeError);
});

Deno.test({
  name: "ok, 4xx and 503 requests move the counters and histogram buckets, by route pattern",
  ...t,
  async fn() {
    const state: ServerState = {};
    const metrics = new ServerMetrics();
    const app = createApp(state, { metrics });
    const before = await scrape(app);
    assert.equal(value(before, "alexnet_edge_model_ready"), 0);
    assert.equal(before.get("alexnet_edge_model_info")!.samples.length, 0, "no model yet");
    assert.equal(value(before, "alexnet_edge_queue_rejections_total"), 0);

    const jpeg = await fixture("chelsea.jpg");
    const post = (body: BodyInit) => app.request("/predict", { method: "POST", body });
    assert.equal((await post(jpeg)).status, 503);
    state.classifier = await tinyClassifier();
    metrics.recordModelLoad("tiny-user-model", 1.5);
    assert.equal((await post(jpeg)).status, 200);
    assert.equal((await post(new Uint8Array(0))).status, 400);
    assert.equal((await post(new TextEncoder().encode("not an image"))).status, 415);
    for (const path of ["/nope", "/nope/2", "/predict/x", "/v1/models/x"]) {
      assert.equal((await app.request(path)).status, 404, path);
    }
    assert.equal((await app.request("/")).status, 200);
    assert.equal((await app.request("/v1/models")).status, 200);
    assert.equal((await app.request("/healthz")).status, 200);

    const after = await scrape(app);
    const requests = (route: string, status: string) =>
      (value(after, "alexnet_edge_http_requests_total", { route, status }) ?? 0) -
      (value(before, "alexnet_edge_http_requests_total", { route, status }) ?? 0);
    assert.equal(requests("/predict", "503"), 1);
    assert.equal(requests("/predict", "200"), 1);
    assert.equal(requests("/predict", "400"), 1);
    assert.equal(requests("/predict", "415"), 1);
    assert.equal(requests("not_found", "404"), 4, "one series for every unknown path");
    assert.equal(requests("static", "200"), 1);
    assert.equal(requests("/v1/models", "200"), 1);
    assert.equal(requests("/healthz", "200"), 1);
    assert.equal(requests("/metrics", "200"), 1, "the first scrape");
    const routes = new Set(
      after.get("alexnet_edge_http_requests_total")!.samples.map((s) => s.labels.route),
    );
    assert.deepEqual(
      [...routes].sort(),
      ["/healthz", "/metrics", "/predict", "/v1/models", "not_found", "static"],
      "route labels are patterns, never raw paths",
    );

    const http = "alexnet_edge_http_request_duration_seconds";
    assert.equal(value(after, `${http}_count`, { route: "/predict" }), 4);
    assert.equal(value(after, `${http}_bucket`, { route: "/predict", le: "+Inf" }), 4);

    // Only the classified image has stage timings: each stage's histogram moved by one,
    // in exactly the buckets at or above its value, whatever that value was.
    const stages = "alexnet_edge_predict_stage_duration_seconds";
    for (const stage of ["decode", "preprocess", "inference", "total"]) {
      assert.equal(value(before, `${stages}_count`, { stage }), undefined, stage);
      assert.equal(value(after, `${stages}_count`, { stage }), 1, stage);
      const sum = value(after, `${stages}_sum`, { stage })!;
      assert.ok(sum >= 0, stage);
      for (const s of after.get(stages)!.samples) {
        if (s.name !== `${stages}_bucket` || s.labels.stage !== stage) continue;
        assert.equal(s.value, sum <= Number(s.labels.le.replace("+Inf", "Infinity")) ? 1 : 0);
      }
    }
    const total = value(after, `${stages}_sum`, { stage: "total" })!;
    const inference = value(after, `${stages}_sum`, { stage: "inference" })!;
    assert.ok(total >= inference);

    assert.equal(value(after, "alexnet_edge_model_ready"), 1);
    assert.equal(
      value(after, "alexnet_edge_model_info", {
        model: "tiny-user-model",
        precision: "fp32",
        backend: "wasm",
      }),
      1,
    );
    assert.equal(
      value(after, "alexnet_edge_model_load_seconds", { model: "tiny-user-model" }),
      1.5,
    );
    assert.equal(value(after, "alexnet_edge_queue_depth"), 0);
    assert.equal(value(after, "alexnet_edge_queue_rejections_total"), 0);
    assert.ok(value(after, "process_resident_memory_bytes")! > 0);
    const start = value(after, "process_start_time_seconds")!;
    assert.ok(start > 1.6e9 && start <= Date.now() / 1000);
    assert.ok(
      value(after, "alexnet_edge_uptime_seconds")! >= value(before, "alexnet_edge_uptime_seconds")!,
    );
    for (const [name, family] of after) {
      assert.ok(family.help, `${name} has HELP`);
      assert.notEqual(family.type, "untyped", `${name} has TYPE`);
    }
  },
});

Deno.test("queue depth is read from the classifier at scrape time", () => {
  const metrics = new ServerMetrics();
  const classifier = {
    queueDepth: 3,
    info: { name: "fake", precision: "fp32", backend: { name: "wasm" } },
  } as unknown as Classifier;
  const families = parsePrometheus(metrics.render({ classifier }));
  assert.equal(value(families, "alexnet_edge_queue_depth"), 3);
  assert.equal(value(families, "alexnet_edge_model_info", { model: "fake" }), 1);
  assert.equal(value(families, "alexnet_edge_model_load_seconds", { model: "fake" }), undefined);
});

Deno.test("the metrics endpoint can be moved or turned off", async () => {
  const moved = createApp({}, { metricsPath: "/internal/prometheus" });
  await scrape(moved, "/internal/prometheus");
  assert.equal((await moved.request("/metrics")).status, 404);
  const off = createApp({}, { metricsPath: false });
  assert.equal((await off.request("/metrics")).status, 404);
});

Deno.test({
  name: "the info metric's precision comes from the manifest, fp32 by default",
  ...t,
  async fn() {
    const fp32 = parsePrometheus(
      new ServerMetrics().render({ classifier: await tinyClassifier() }),
    );
    assert.equal(value(fp32, "alexnet_edge_model_info", { model: "tiny-user-model" }), 1);
    assert.equal(fp32.get("alexnet_edge_model_info")!.samples[0].labels.precision, "fp32");

    const paths = await writeTinyModel(64, 48);
    const manifest = JSON.parse(await Deno.readTextFile(paths.manifest));
    await Deno.writeTextFile(paths.manifest, JSON.stringify({ ...manifest, precision: "int8" }));
    const labelled = await loadClassifier(paths);
    const int8 = parsePrometheus(new ServerMetrics().render({ classifier: labelled }));
    assert.equal(int8.get("alexnet_edge_model_info")!.samples[0].labels.precision, "int8");
    assert.equal(labelled.info.precision, "int8", "/v1/models shows it too");

    await Deno.writeTextFile(paths.manifest, JSON.stringify({ ...manifest, precision: "fp64" }));
    await assert.rejects(() => loadClassifier(paths), /"precision" must be/);
  },
});
