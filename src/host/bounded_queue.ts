/**
 * Runs async tasks one at a time, in arrival order, holding at most
 * `capacity` of them (waiting plus running); one more is refused at once with
 * a {@linkcode QueueFullError}, and counted. A waiting task whose signal
 * aborts leaves the queue without running; a running one is not interrupted.
 *
 * With `yieldToEventLoop`, every task starts a macrotask later (a 0 ms timer,
 * ~2 ms in Deno). That is for tasks that block the thread, as an
 * onnxruntime-web run does for its whole inference: started from the promise
 * chain of the request that queued it, each run would block before the event
 * loop could take in the next request, so requests would pile up in the
 * kernel, where no queue bound or timeout sees them.
 *
 * @module
 */

/** Thrown by {@linkcode BoundedQueue.run} when the queue is full. */
export class QueueFullError extends RangeError {
  /** The queue's capacity when it refused. */
  readonly capacity: number;

  /** Creates the error for a queue of `capacity`. */
  constructor(capacity: number) {
    super(`Cannot queue the task: the queue holds its maximum of ${capacity}`);
    this.name = "QueueFullError";
    this.capacity = capacity;
  }
}

/** Options of {@linkcode BoundedQueue}. */
export interface BoundedQueueOptions {
  /** Most tasks waiting or running at once (default: unbounded). */
  capacity?: number;
  /** Give the event loop (timers, I/O) a turn before each task starts (default false). */
  yieldToEventLoop?: boolean;
}

/** Options of one {@linkcode BoundedQueue.run}. */
export interface QueueRunOptions {
  /** Aborting it removes the task if it has not started (the promise rejects with the reason). */
  signal?: AbortSignal;
}

interface Entry {
  task: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/**
 * A serial task queue with a bound.
 *
 * @example
 * ```ts
 * const queue = new BoundedQueue({ capacity: 32 });
 * try {
 *   await queue.run(() => session.run(feeds), { signal: request.signal });
 * } catch (e) {
 *   if (e instanceof QueueFullError) return overloaded();
 *   throw e;
 * }
 * ```
 */
export class BoundedQueue {
  readonly #capacity: number;
  readonly #yield: boolean;
  readonly #waiting: Entry[] = [];
  /** A task is running, or about to start. */
  #busy = false;
  /** A task is running. */
  #running = false;
  #rejected = 0;

  /** Creates a queue holding at most `options.capacity` tasks. */
  constructor(options: BoundedQueueOptions = {}) {
    const { capacity = Infinity, yieldToEventLoop = false } = options;
    if (!(capacity >= 1)) {
      throw new RangeError(`Cannot create a queue of capacity ${capacity}: expected 1 or more`);
    }
    this.#capacity = capacity;
    this.#yield = yieldToEventLoop;
  }

  /** Most tasks held at once. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Tasks waiting or running. */
  get pending(): number {
    return this.#waiting.length + (this.#running ? 1 : 0);
  }

  /** Tasks refused because the queue was full, since it was created. */
  get rejected(): number {
    return this.#rejected;
  }

  /**
   * Runs `task` after every task queued before it has settled; rejects with
   * {@linkcode QueueFullError} at once when the queue is full, and with the
   * signal's reason when it aborts before the task starts.
   */
  run<T>(task: () => Promise<T>, options: QueueRunOptions = {}): Promise<T> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.pending >= this.#capacity) {
      this.#rejected++;
      return Promise.reject(new QueueFullError(this.#capacity));
    }
    return new Promise<T>((resolve, reject) => {
      const entry: Entry = { task, resolve: resolve as (v: unknown) => void, reject, signal };
      if (signal) {
        entry.onAbort = () => {
          const at = this.#waiting.indexOf(entry);
          if (at < 0) return; // already running
          this.#waiting.splice(at, 1);
          reject(signal.reason);
        };
        signal.addEventListener("abort", entry.onAbort, { once: true });
      }
      this.#waiting.push(entry);
      this.#next();
    });
  }

  #next(): void {
    if (this.#busy || this.#waiting.length === 0) return;
    this.#busy = true;
    const start = () => {
      const entry = this.#waiting.shift();
      if (!entry) {
        this.#busy = false; // the waiting ones aborted meanwhile
        return;
      }
      this.#running = true;
      if (entry.onAbort) entry.signal!.removeEventListener("abort", entry.onAbort);
      Promise.resolve().then(entry.task).then(entry.resolve, entry.reject).finally(() => {
        this.#running = this.#busy = false;
        this.#next();
      });
    };
    // A microtask later, as a promise chain would (run() never calls a task synchronously),
    // or a macrotask later when asked to yield.
    if (this.#yield) setTimeout(start, 0);
    else start();
  }
}
