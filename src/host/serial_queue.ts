import { BoundedQueue } from "./bounded_queue.ts";

/**
 * Runs async tasks one at a time, in arrival order: a {@linkcode BoundedQueue}
 * with no bound.
 *
 * @example
 * ```ts
 * const queue = new SerialQueue();
 * await queue.run(() => session.run(feeds));
 * ```
 */
export class SerialQueue extends BoundedQueue {
  /** Creates an unbounded serial queue. */
  constructor() {
    super();
  }
}
