/**
 * The one Worker message protocol of the house: calls with ids, answers that
 * carry a result or an error as `{ code, message }`, transfer lists, and log
 * lines forwarded from a Worker to the server's {@linkcode Logger}. The
 * inference Worker (src/classify), the worker pool and the explorer engine all
 * speak it; the kernel split helpers use {@linkcode startWorker} and a
 * {@linkcode WorkerChannel} for their set-up messages.
 *
 * It is also the single place that captures `globalThis.Worker`: when
 * onnxruntime-web's wasm glue first loads under Deno it takes itself for
 * Node.js and replaces `globalThis.Worker` with `worker_threads.Worker`
 * (whose workers have no `self`). This module is imported by every Worker
 * host before onnxruntime-web, so the web Worker is kept here.
 *
 * Wire format (structured-cloned):
 * - server -> Worker: `{ kind: "call", id, method, body }`
 * - Worker -> server: `{ kind: "reply", id, ok: true, result }`,
 *   `{ kind: "reply", id, ok: false, error: { code?, message, name? } }`,
 *   `{ kind: "log", level, msg, fields }`
 *
 * @module
 */
import { ClassifierError, ERROR_STATUS, type ErrorCode } from "../errors.ts";
import type { LogFields, Logger, LogLevel } from "../log.ts";

/** The web Worker constructor, captured before onnxruntime-web can replace it. */
const WebWorker: typeof Worker | undefined = typeof globalThis.Worker === "function"
  ? globalThis.Worker
  : undefined;

/** Whether this runtime can start web Workers. */
export function hasWorkers(): boolean {
  return WebWorker !== undefined && WebWorker.name !== "NodeWorker";
}

/**
 * Starts a module Worker from `url`; `what` names it in errors ("the inference
 * Worker"). Throws a TypeError where there is no web Worker API.
 *
 * @example
 * ```ts
 * const worker = startWorker(new URL("./_worker.ts", import.meta.url), "the explorer Worker");
 * ```
 */
export function startWorker(url: URL, what: string): Worker {
  if (!WebWorker) throw new TypeError(`Cannot start ${what}: this runtime has no Worker API`);
  if (WebWorker.name === "NodeWorker") {
    throw new TypeError(
      `Cannot start ${what}: src/host/messages.ts was first imported after onnxruntime-web ` +
        "loaded its WebAssembly (it replaces globalThis.Worker)",
    );
  }
  return new WebWorker(url.href, { type: "module" });
}

/** Methods a Worker answers: name -> what is sent and what comes back. */
export type Methods = Record<string, { body: unknown; result: unknown }>;

/** An error as it crosses a thread: the code of one a user may see, and its message. */
export interface WireError {
  code?: ErrorCode;
  message: string;
  /** The error's name (RangeError, TimeoutError, ...), so it is rebuilt as the same kind. */
  name?: string;
}

/** server -> Worker. */
export interface CallMessage {
  kind: "call";
  id: number;
  method: string;
  body: unknown;
}

/** Worker -> server: the answer to one call. */
export type ReplyMessage =
  | { kind: "reply"; id: number; ok: true; result: unknown }
  | { kind: "reply"; id: number; ok: false; error: WireError };

/** Worker -> server: one log line. */
export interface LogMessage {
  kind: "log";
  level: LogLevel;
  msg: string;
  fields?: LogFields;
}

/** An error as a value that can be posted. */
export function toWire(e: unknown): WireError {
  const error = e instanceof Error ? e : new Error(String(e));
  const wire: WireError = { message: error.message, name: error.name };
  if (error instanceof ClassifierError) wire.code = error.code;
  return wire;
}

/** The error a {@linkcode WireError} stands for: a ClassifierError when it had a code. */
export function fromWire(wire: WireError): Error {
  if (wire.code && wire.code in ERROR_STATUS) return new ClassifierError(wire.code, wire.message);
  if (wire.name === "RangeError") return new RangeError(wire.message);
  if (wire.name === "TypeError") return new TypeError(wire.message);
  if (wire.name === "TimeoutError" || wire.name === "AbortError") {
    return new DOMException(wire.message, wire.name);
  }
  return new Error(wire.message);
}

/** The buffers of `views` that can be moved rather than copied (whole, non-shared). */
export function movable(...views: ArrayBufferView[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const v of views) {
    const { buffer, byteLength } = v;
    if (buffer instanceof ArrayBuffer && buffer.byteLength === byteLength) out.add(buffer);
  }
  return [...out];
}

/** Options of {@linkcode WorkerChannel}. */
export interface ChannelOptions {
  /** Where the Worker's log lines go (default: dropped). */
  logger?: Logger;
  /** Fields added to every forwarded line (`{ worker: "inference" }`). */
  fields?: LogFields;
  /** Called once when the Worker ends by itself (an uncaught error), with why. */
  onExit?: (reason: string) => void;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (reason: Error) => void;
}

/**
 * The server's end of one Worker: typed calls answered by id, any number in
 * flight, and the Worker's log lines written to the server's logger with
 * their level and fields.
 *
 * @example
 * ```ts
 * type Echo = { echo: { body: string; result: string } };
 * const channel = new WorkerChannel<Echo>(startWorker(url, "the echo Worker"));
 * await channel.call("echo", "hi");
 * channel.close();
 * ```
 */
export class WorkerChannel<M extends Methods> {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  readonly #options: ChannelOptions;
  #next = 0;
  #closed?: Error;

  /** Takes over `worker`'s message and error handlers. */
  constructor(worker: Worker, options: ChannelOptions = {}) {
    this.#worker = worker;
    this.#options = options;
    worker.onmessage = (event: MessageEvent) => this.#receive(event.data);
    worker.onmessageerror = () => this.#exit("sent a message that could not be read");
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault(); // a Worker's crash must not take the server down
      this.#exit(`crashed (${event.message})`);
    };
  }

  /** Calls in flight. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Set once the channel is closed or the Worker ended: why. */
  get closed(): Error | undefined {
    return this.#closed;
  }

  /** Calls `method` in the Worker; `transfer` lists buffers to move rather than copy. */
  call<K extends keyof M & string>(
    method: K,
    body: M[K]["body"],
    transfer: Transferable[] = [],
  ): Promise<M[K]["result"]> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const message: CallMessage = { kind: "call", id, method, body };
      this.#worker.postMessage(message, transfer);
    });
  }

  /** Terminates the Worker; calls in flight reject with `reason`. */
  close(reason: Error = new Error("Cannot finish the call: the Worker was closed")): void {
    if (this.#closed) return;
    this.#closed = reason;
    this.#worker.terminate();
    for (const p of this.#pending.values()) p.reject(reason);
    this.#pending.clear();
  }

  #receive(data: ReplyMessage | LogMessage): void {
    if (data?.kind === "log") {
      const { logger, fields } = this.#options;
      logger?.log(data.level, data.msg, { ...data.fields, ...fields });
      return;
    }
    if (data?.kind !== "reply") return;
    const pending = this.#pending.get(data.id);
    this.#pending.delete(data.id);
    if (data.ok) pending?.resolve(data.result);
    else pending?.reject(fromWire(data.error));
  }

  #exit(why: string): void {
    if (this.#closed) return;
    this.close(new ClassifierError("not_ready", "Cannot answer: the Worker stopped; retry"));
    this.#options.onExit?.(why);
  }
}

/** A result and the buffers to move with it ({@linkcode serveMessages}). */
export class Moved<R> {
  /** Wraps `result`, moving `transfer` instead of copying it. */
  constructor(readonly result: R, readonly transfer: Transferable[]) {}
}

/** The Worker's handlers: one async function per method. */
export type Handlers<M extends Methods> = {
  [K in keyof M]: (body: M[K]["body"]) => Promise<M[K]["result"] | Moved<M[K]["result"]>>;
};

interface Port {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent) => void) | null;
}

/** The Worker's own scope, as this module uses it. */
function port(): Port {
  return globalThis as unknown as Port;
}

/**
 * The Worker's end: answers each call with its handler's result, or its error
 * as `{ code, message }`. With `serial`, one call at a time in arrival order.
 *
 * @example
 * ```ts
 * serveMessages<Echo>({ echo: (text) => Promise.resolve(text) });
 * ```
 */
export function serveMessages<M extends Methods>(
  handlers: Handlers<M>,
  options: { serial?: boolean } = {},
): void {
  const self = port();
  let chain: Promise<unknown> = Promise.resolve();
  const answer = async ({ id, method, body }: CallMessage) => {
    try {
      const handler = handlers[method as keyof M];
      if (!handler) throw new TypeError(`Cannot handle the call "${method}": no such method`);
      const out = await handler(body as M[keyof M]["body"]);
      const [result, transfer] = out instanceof Moved ? [out.result, out.transfer] : [out, []];
      self.postMessage({ kind: "reply", id, ok: true, result } satisfies ReplyMessage, transfer);
    } catch (e) {
      self.postMessage({ kind: "reply", id, ok: false, error: toWire(e) } satisfies ReplyMessage);
    }
  };
  self.onmessage = (event: MessageEvent) => {
    const data = event.data as CallMessage;
    if (data?.kind !== "call") return;
    if (options.serial) chain = chain.then(() => answer(data));
    else void answer(data);
  };
}

/**
 * A logger for code running in a Worker: every line goes to the server's
 * logger through the {@linkcode WorkerChannel}, which filters by its level.
 *
 * @example
 * ```ts
 * const log = workerLogger();
 * log.info("QOperator int8 model rewritten to QDQ", { ms: 120 });
 * ```
 */
export function workerLogger(): Logger {
  const self = port();
  const log = (level: LogLevel, msg: string, fields?: LogFields) => {
    let safe: LogFields | undefined;
    try {
      safe = fields && structuredClone(fields);
    } catch {
      safe = { log_error: "Cannot forward the fields: they cannot be cloned" };
    }
    self.postMessage({ kind: "log", level, msg, fields: safe } satisfies LogMessage);
  };
  return {
    level: "debug",
    enabled: () => true,
    log,
    debug: (msg, fields) => log("debug", msg, fields),
    info: (msg, fields) => log("info", msg, fields),
    warn: (msg, fields) => log("warn", msg, fields),
    error: (msg, fields) => log("error", msg, fields),
  };
}
