/**
 * A minimal Prometheus registry: counters, gauges and histograms with
 * labels, written in the text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * @module
 */

/** Label names to values of one series. */
export type Labels = Readonly<Record<string, string>>;

/** The Content-Type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Latency buckets in seconds, 1 ms to 10 s. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function number(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return Number.isNaN(v) ? "NaN" : String(v);
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labelText(labels: Labels): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return pairs.length ? `{${pairs.join(",")}}` : "";
}

/** One metric family: a name, help, type and its series keyed by label text. */
abstract class Family<T> {
  readonly series: Map<string, { labels: Labels; value: T }> = new Map();

  constructor(readonly name: string, readonly help: string, readonly labelNames: string[]) {
    if (!NAME.test(name)) throw new TypeError(`Cannot register metric "${name}": invalid name`);
    for (const l of labelNames) {
      if (!LABEL.test(l) || l === "le") {
        throw new TypeError(`Cannot register metric "${name}": invalid label "${l}"`);
      }
    }
  }

  abstract readonly type: "counter" | "gauge" | "histogram";
  protected abstract initial(): T;
  protected abstract lines(labels: Labels, value: T): string[];

  /** The series for `labels`, created on first use. */
  protected at(labels: Labels): { labels: Labels; value: T } {
    const ordered: Record<string, string> = {};
    for (const l of this.labelNames) {
      if (labels[l] === undefined) {
        throw new TypeError(`Cannot record metric "${this.name}": label "${l}" is missing`);
      }
      ordered[l] = labels[l];
    }
    const key = labelText(ordered);
    let s = this.series.get(key);
    if (!s) this.series.set(key, s = { labels: ordered, value: this.initial() });
    return s;
  }

  /** The family in the text format, HELP and TYPE first. */
  render(): string {
    const head = [
      `# HELP ${this.name} ${this.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`,
      `# TYPE ${this.name} ${this.type}`,
    ];
    // A counter or histogram without labels has its one series from the start
    // (it reads 0); a gauge shows only the values it was set to.
    const series = this.series.size || this.labelNames.length || this.type === "gauge"
      ? [...this.series.values()]
      : [{ labels: {}, value: this.initial() }];
    return [...head, ...series.flatMap((s) => this.lines(s.labels, s.value))].join("\n");
  }
}

/** A value that only goes up. */
export class Counter extends Family<number> {
  readonly type = "counter";
  protected initial(): number {
    return 0;
  }
  protected lines(labels: Labels, value: number): string[] {
    return [`${this.name}${labelText(labels)} ${number(value)}`];
  }
  /** Adds `by` (default 1) to the series of `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`Cannot add ${by} to counter "${this.name}"`);
    this.at(labels).value += by;
  }
}

/** A value that goes up and down. */
export class Gauge extends Family<number> {
  readonly type = "gauge";
  protected initial(): number {
    return 0;
  }
  protected lines(labels: Labels, value: number): string[] {
    return [`${this.name}${labelText(labels)} ${number(value)}`];
  }
  /** Sets the series of `labels`. */
  set(value: number, labels: Labels = {}): void {
    this.at(labels).value = value;
  }
  /** Drops every series (for gauges whose label values change or go away). */
  clear(): void {
    this.series.clear();
  }
}

interface Buckets {
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into cumulative `le` buckets. */
export class Histogram extends Family<Buckets> {
  readonly type = "histogram";
  readonly bounds: readonly number[];

  constructor(name: string, help: string, labelNames: string[], bounds = LATENCY_BUCKETS) {
    super(name, help, labelNames);
    if (bounds.some((b, i) => i > 0 && b <= bounds[i - 1])) {
      throw new RangeError(`Cannot register histogram "${name}": buckets must increase`);
    }
    this.bounds = bounds;
  }
  protected initial(): Buckets {
    return { counts: this.bounds.map(() => 0), sum: 0, count: 0 };
  }
  protected lines(labels: Labels, b: Buckets): string[] {
    const with_ = (le: string) => labelText({ ...labels, le });
    return [
      ...this.bounds.map((le, i) => `${this.name}_bucket${with_(number(le))} ${b.counts[i]}`),
      `${this.name}_bucket${with_("+Inf")} ${b.count}`,
      `${this.name}_sum${labelText(labels)} ${number(b.sum)}`,
      `${this.name}_count${labelText(labels)} ${b.count}`,
    ];
  }
  /** Counts `value` into the series of `labels`. */
  observe(value: number, labels: Labels = {}): void {
    const b = this.at(labels).value;
    this.bounds.forEach((le, i) => {
      if (value <= le) b.counts[i]++;
    });
    b.sum += value;
    b.count++;
  }
}

/** A set of metric families rendered together. */
export class Registry {
  readonly #families = new Map<string, Counter | Gauge | Histogram>();

  /** Adds a family; names must be unique. */
  register<F extends Counter | Gauge | Histogram>(family: F): F {
    if (this.#families.has(family.name)) {
      throw new TypeError(`Cannot register metric "${family.name}": the name is taken`);
    }
    this.#families.set(family.name, family);
    return family;
  }

  /** Every family in the text format, ending with a newline. */
  render(): string {
    return [...this.#families.values()].map((f) => f.render()).join("\n") + "\n";
  }
}
