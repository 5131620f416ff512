/**
 * One typed configuration for the server and the CLI, from flags and
 * environment variables, validated once at start-up. Flags win over env.
 * Defaults are documented in README's configuration table.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** Validated configuration. */
export interface Config {
  /** TCP port (flag --port, env PORT; default 8000). */
  port: number;
  /** Interface to listen on (flag --host, env HOST; default 0.0.0.0). */
  hostname: string;
  /** ONNX model file (flag --model, env MODEL); with no value the synthetic AlexNet is used. */
  model?: string;
  /** Manifest of --model (flag --manifest, env MODEL_MANIFEST; default: the model path with .json). */
  manifest?: string;
  /** Intra-op threads (flag --threads, env THREADS; default: the available cores). */
  threads?: number;
  /** Largest accepted request body in bytes (flag --max-body, env MAX_BODY; default 10 MB). */
  maxBodyBytes: number;
  /** Seed of the synthetic weights (flag --seed, env SEED; default 1). */
  seed: number;
}

/** Parses "10mb", "512kb", "1048576" into bytes. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(text);
  if (!m) throw new TypeError(`Cannot parse size "${text}": use e.g. 10mb, 512kb or a byte count`);
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[
    (m[2] ?? "b").toLowerCase() as "b"
  ];
  return Math.floor(Number(m[1]) * unit);
}

function integer(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(`Cannot use ${name}=${text}: expected an integer from ${min} to ${max}`);
  }
  return n;
}

/**
 * Builds the configuration from command-line arguments and an environment
 * lookup. Throws a TypeError/RangeError naming the bad setting.
 *
 * @example
 * ```ts
 * const config = parseConfig(Deno.args, (k) => Deno.env.get(k));
 * ```
 */
export function parseConfig(
  args: string[],
  env: (key: string) => string | undefined = () => undefined,
): Config & { positionals: string[]; json: boolean; topK: number } {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      model: { type: "string" },
      manifest: { type: "string" },
      threads: { type: "string" },
      "max-body": { type: "string" },
      seed: { type: "string" },
      json: { type: "boolean", default: false },
      "top-k": { type: "string" },
    },
  });
  const get = (flag: keyof typeof values, key: string) =>
    (values[flag] as string | undefined) ?? env(key);
  const port = get("port", "PORT");
  const threads = get("threads", "THREADS");
  const maxBody = get("max-body", "MAX_BODY");
  const seed = get("seed", "SEED");
  const topK = values["top-k"];
  return {
    port: port === undefined ? 8000 : integer("port", port, 0, 65535),
    hostname: get("host", "HOST") ?? "0.0.0.0",
    model: get("model", "MODEL") || undefined,
    manifest: get("manifest", "MODEL_MANIFEST") || undefined,
    threads: threads === undefined ? undefined : integer("threads", threads, 1, 64),
    maxBodyBytes: maxBody === undefined ? 10 * 1024 * 1024 : parseSize(maxBody),
    seed: seed === undefined ? 1 : integer("seed", seed, 0, 2 ** 32 - 1),
    positionals,
    json: values.json as boolean,
    topK: topK === undefined ? 5 : integer("top-k", topK, 1, 1000),
  };
}
