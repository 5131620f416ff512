/**
 * A small structured logger: one JSON object per line on stdout, with
 * `time`, `level` and `msg` first and the caller's fields after them.
 *
 * @module
 */

/** Log levels, least severe first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Every level, least severe first. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** Extra fields of one line; `time`, `level` and `msg` are taken. */
export type LogFields = Record<string, unknown>;

/** Writes JSON log lines at or above its level. */
export interface Logger {
  /** The least severe level written. */
  readonly level: LogLevel;
  /** Whether a line at `level` would be written. */
  enabled(level: LogLevel): boolean;
  /** Writes one line at `level`. */
  log(level: LogLevel, msg: string, fields?: LogFields): void;
  /** Writes one line at debug level. */
  debug(msg: string, fields?: LogFields): void;
  /** Writes one line at info level. */
  info(msg: string, fields?: LogFields): void;
  /** Writes one line at warn level. */
  warn(msg: string, fields?: LogFields): void;
  /** Writes one line at error level. */
  error(msg: string, fields?: LogFields): void;
}

/** Options of {@linkcode createLogger}. */
export interface LoggerOptions {
  /** Least severe level written (default "info"). */
  level?: LogLevel;
  /** Where each line goes, without its newline (default: stdout via console.log). */
  write?: (line: string) => void;
}

/** Errors become `{ name, message, stack }`, bigints strings; everything else as JSON has it. */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack };
  }
  return typeof value === "bigint" ? value.toString() : value;
}

/**
 * Creates a logger.
 *
 * @example
 * ```ts
 * const log = createLogger({ level: "debug" });
 * log.info("Model ready", { model: "alexnet-synthetic", load_ms: 4210 });
 * // {"time":"2025-01-01T00:00:00.000Z","level":"info","msg":"Model ready","model":"alexnet-synthetic","load_ms":4210}
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  const write = options.write ?? ((line: string) => console.log(line));
  const threshold = LOG_LEVELS.indexOf(level);
  if (threshold < 0) throw new RangeError(`Cannot create a logger at level "${level}"`);
  const enabled = (at: LogLevel) => LOG_LEVELS.indexOf(at) >= threshold;
  const log = (at: LogLevel, msg: string, fields: LogFields = {}) => {
    if (!enabled(at)) return;
    const head = { time: new Date().toISOString(), level: at, msg };
    let line: string;
    try {
      line = JSON.stringify({ ...head, ...withoutHead(fields) }, replacer);
    } catch (e) {
      line = JSON.stringify({
        ...head,
        log_error: `Cannot write the fields: ${(e as Error).message}`,
      });
    }
    write(line);
  };
  return {
    level,
    enabled,
    log,
    debug: (msg, fields) => log("debug", msg, fields),
    info: (msg, fields) => log("info", msg, fields),
    warn: (msg, fields) => log("warn", msg, fields),
    error: (msg, fields) => log("error", msg, fields),
  };
}

function withoutHead(fields: LogFields): LogFields {
  const { time: _t, level: _l, msg: _m, ...rest } = fields;
  return rest;
}
