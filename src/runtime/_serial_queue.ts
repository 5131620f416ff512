/**
 * Runs async tasks one at a time, in arrival order.
 *
 * @example
 * ```ts
 * const queue = new SerialQueue();
 * await queue.run(() => session.run(feeds));
 * ```
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;

  /** Tasks waiting or running. */
  get pending(): number {
    return this.#pending;
  }

  /** Runs `task` after every task queued before it has settled. */
  run<T>(task: () => Promise<T>): Promise<T> {
    this.#pending++;
    const result = this.#tail.then(task).finally(() => this.#pending--);
    // The chain must survive a failing task, so the tail swallows its error.
    this.#tail = result.catch(() => {});
    return result;
  }
}
