/**
 * The one request pipeline. Every route that carries an image or a tensor
 * (`/predict`, `/v2/models/{name}/infer`, `/v1/explorer/features`) hands its
 * steps to {@linkcode Pipeline.handle}, which runs them in this order:
 *
 * 1. read body: at most `maxReaders` bodies stream in at once, each within
 *    `--max-body` bytes, `--body-idle-timeout` between chunks and
 *    `--body-read-timeout` for the whole (413, 408), and the route's `scan`
 *    sees each chunk (a batch over `--max-batch` is refused as it arrives);
 *    then the route parses it and checks everything that needs no decoding
 *    (400, 413 over `--max-batch`).
 * 2. admit: a place among `--max-queue`, shared by all these routes (503
 *    `overloaded` with Retry-After when none is free).
 * 3. decode and preprocess, through the classifier (off the server's thread
 *    where it has Workers), within `--max-pixels` and the decoders' byte budget.
 * 4. run: a lane of the runtime, taken in arrival order; a run still waiting
 *    when its client left or its deadline passed is dropped, never executed.
 * 5. answer.
 *
 * /predict's classifier decodes where it runs the model (its Worker), so
 * there 3 and 4 are one call, `classify`, made in the lane. The body is read before admission so that a slow uploader holds only a
 * reader place, for the short read deadline, never a place in the queue that
 * requests ready to decode need; a full queue is still refused before any
 * byte is read. Every wait and every step takes the request's signal
 * (`--request-timeout`, or the client going away).
 *
 * @module
 */
import type { Context } from "hono";
import type { Classifier } from "../classify/mod.ts";
import { QueueFullError } from "../host/bounded_queue.ts";
import { readBody } from "./_body.ts";
import { Slots } from "./_slots.ts";
import { ClientGoneError, requestSignal, RetryLaterError } from "./limits.ts";

/** Options of {@linkcode Pipeline}; defaults as the flags document them. */
export interface PipelineOptions {
  /** Largest request body in bytes (default 10 MB). */
  maxBodyBytes?: number;
  /** Requests admitted at once, on every route together (default 32). */
  maxQueue?: number;
  /** Bodies read at once (default 64); more get 503 without a byte read. */
  maxReaders?: number;
  /** Longest pause between two chunks of a body, in ms (default 2 s). */
  bodyIdleTimeoutMs?: number;
  /** Longest time to read a whole body, in ms (default 5 s). */
  bodyReadTimeoutMs?: number;
  /** Largest image, width x height from its header (default: the decoders', 40 MP). */
  maxPixels?: number;
  /** Most images or tensors in one request (default 16). */
  maxBatch?: number;
  /** Runs on the model's backend at once: its lanes (default 1; N Workers take 2 each). */
  runLanes?: number;
  /** Called for each request refused with 503 `overloaded` (the metrics count it). */
  onReject?: () => void;
}

/** What each step of a request sees. */
export interface Job {
  classifier: Classifier;
  /** The request's deadline and its client; every wait and call takes it. */
  signal?: AbortSignal;
  /** Largest image, for the classifier's decode. */
  maxPixels?: number;
  /** Most images or tensors in one request. */
  maxBatch: number;
}

/**
 * A route's steps. `parse` runs before admission, so it must only check
 * (shapes, counts, sizes) and allocate nothing large; `prepare` decodes and
 * preprocesses; `run` runs the model in a lane.
 */
export interface Steps<R, P, O> {
  /**
   * A check of the body while it streams in (counts, not parsing): called with
   * each chunk, it throws to refuse the request before the rest is read.
   */
  scan?(job: Job): (chunk: Uint8Array) => void;
  /** The request out of its body, checked; throws 400/413/415 `ClassifierError`s. */
  parse(body: Uint8Array, c: Context, job: Job): R | Promise<R>;
  /** Decode and preprocess (through the classifier). */
  prepare(request: R, job: Job): P | Promise<P>;
  /** Run the model on what `prepare` made. */
  run(prepared: P, job: Job): Promise<O>;
  /** The answer. */
  answer(output: O, c: Context, request: R, job: Job): Response | Promise<Response>;
  /** The lanes `run` takes (default: the model's); a second runtime (the explorer's) has its own. */
  lanes?: Slots;
}

/** Status of an answer to a client that has gone (nginx's "client closed request"). */
export const CLIENT_GONE_STATUS = 499;

/**
 * The admission, budgets and lanes every image or tensor route shares.
 *
 * @example
 * ```ts
 * const pipeline = new Pipeline({ maxQueue: 32, maxPixels: 40e6 });
 * app.post("/predict", (c) => pipeline.handle(c, state.classifier!, predictSteps));
 * ```
 */
export class Pipeline {
  readonly #queue: Slots;
  readonly #readers: Slots;
  readonly #lanes: Slots;
  readonly #maxBodyBytes: number;
  readonly #idleMs: number;
  readonly #readMs: number;
  readonly #maxPixels?: number;
  readonly #maxBatch: number;
  readonly #onReject?: () => void;

  /** Creates the pipeline's places and budgets. */
  constructor(options: PipelineOptions = {}) {
    this.#queue = new Slots(options.maxQueue ?? 32);
    this.#readers = new Slots(options.maxReaders ?? 64);
    this.#lanes = new Slots(options.runLanes ?? 1);
    this.#maxBodyBytes = options.maxBodyBytes ?? 10 * 1024 * 1024;
    this.#idleMs = options.bodyIdleTimeoutMs ?? 2_000;
    this.#readMs = options.bodyReadTimeoutMs ?? 5_000;
    this.#maxPixels = options.maxPixels;
    this.#maxBatch = options.maxBatch ?? 16;
    this.#onReject = options.onReject;
  }

  /** Requests admitted now (decoding, waiting for a lane or running). */
  get admitted(): number {
    return this.#queue.held;
  }

  /** Largest request body in bytes. */
  get maxBodyBytes(): number {
    return this.#maxBodyBytes;
  }

  /**
   * Runs one request through the steps, in the pipeline's order. Errors are
   * thrown for the route's error handler: `ClassifierError`s (4xx, 503
   * `RetryLaterError`s), or the signal's reason once the deadline passed.
   */
  async handle<R, P, O>(
    c: Context,
    classifier: Classifier,
    steps: Steps<R, P, O>,
  ): Promise<Response> {
    const signal = requestSignal(c);
    const job: Job = { classifier, signal, maxPixels: this.#maxPixels, maxBatch: this.#maxBatch };
    try {
      // 1. read body, parse and check it (a full queue is refused before a byte is read)
      if (this.#queue.held >= this.#queue.size) throw this.#overloaded();
      const body = await this.#read(c, signal, steps.scan?.(job));
      const request = await steps.parse(body, c, job);
      // 2. admit
      const release = this.#queue.tryTake();
      if (!release) throw this.#overloaded();
      try {
        // 3. decode, preprocess
        const prepared = await steps.prepare(request, job);
        signal?.throwIfAborted();
        // 4. run
        const output = await this.#run(
          steps.lanes ?? this.#lanes,
          signal,
          () => steps.run(prepared, job),
        );
        signal?.throwIfAborted();
        // 5. answer
        return await steps.answer(output, c, request, job);
      } finally {
        release();
      }
    } catch (e) {
      if (signal?.reason instanceof ClientGoneError && signal.reason === e) {
        return new Response(null, { status: CLIENT_GONE_STATUS });
      }
      throw e;
    }
  }

  async #read(
    c: Context,
    signal?: AbortSignal,
    onChunk?: (chunk: Uint8Array) => void,
  ): Promise<Uint8Array> {
    const body = c.req.raw.body;
    if (!body) return new Uint8Array(0);
    const release = this.#readers.tryTake();
    if (!release) {
      this.#onReject?.();
      throw new RetryLaterError(
        "overloaded",
        `Cannot read the request now: ${this.#readers.size} bodies are being read; retry in 1 s`,
        1,
      );
    }
    const header = c.req.header("content-length")?.trim();
    try {
      return await readBody(body, {
        maxBytes: this.#maxBodyBytes,
        idleMs: this.#idleMs,
        totalMs: this.#readMs,
        declared: header && /^\d+$/.test(header) ? Number(header) : undefined,
        signal,
        onChunk,
      });
    } finally {
      release();
    }
  }

  async #run<O>(lanes: Slots, signal: AbortSignal | undefined, run: () => Promise<O>) {
    // Waiting here, a run whose client left (or whose deadline passed) leaves without running.
    const release = await lanes.take(signal);
    try {
      return await run();
    } catch (e) {
      // A backend with its own bound (createWasmBackend's maxQueue) refuses the same way.
      // (By name too: a Worker's error crosses the thread as a plain Error.)
      if (!(e instanceof QueueFullError) && (e as Error)?.name !== "QueueFullError") throw e;
      this.#onReject?.();
      throw new RetryLaterError(
        "overloaded",
        "Cannot classify now: the inference queue is full",
        1,
      );
    } finally {
      release();
    }
  }

  #overloaded(): RetryLaterError {
    this.#onReject?.();
    return new RetryLaterError(
      "overloaded",
      `Cannot classify now: ${this.#queue.size} requests are already queued; retry in 1 s`,
      1,
    );
  }
}
