/**
 * A counted set of places (a semaphore) for the request pipeline: places in
 * the shared queue, body readers, and the lanes that runs take on a backend.
 * Taking a place either succeeds at once ({@linkcode Slots.tryTake}) or waits
 * in arrival order ({@linkcode Slots.take}); a waiter whose signal aborts
 * leaves the line without ever holding a place, so work queued for a client
 * that left never starts.
 *
 * @module
 */

/** Gives a place back; calling it again does nothing. */
export type Release = () => void;

interface Waiter {
  grant: (release: Release) => void;
}

/**
 * At most `size` holders at once.
 *
 * @example
 * ```ts
 * const lanes = new Slots(1);
 * const release = await lanes.take(signal);
 * try {
 *   await backend.run(x, dims);
 * } finally {
 *   release();
 * }
 * ```
 */
export class Slots {
  readonly #size: number;
  readonly #waiting: Waiter[] = [];
  #held = 0;

  /** Creates `size` places (1 or more). */
  constructor(size: number) {
    if (!(size >= 1)) throw new RangeError(`Cannot create ${size} places: expected 1 or more`);
    this.#size = size;
  }

  /** Number of places. */
  get size(): number {
    return this.#size;
  }

  /** Places held now. */
  get held(): number {
    return this.#held;
  }

  /** Holders waiting for a place. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** A place now, or undefined when all are held (nobody is made to wait). */
  tryTake(): Release | undefined {
    if (this.#held >= this.#size) return undefined;
    this.#held++;
    return this.#releaser();
  }

  /**
   * A place once one is free, in arrival order; rejects with the signal's
   * reason if it aborts first (the waiter then never holds a place).
   */
  take(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const now = this.tryTake();
    if (now) return Promise.resolve(now);
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener("abort", leave);
          resolve(release);
        },
      };
      const leave = () => {
        const at = this.#waiting.indexOf(waiter);
        if (at >= 0) this.#waiting.splice(at, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", leave, { once: true });
      this.#waiting.push(waiter);
    });
  }

  #releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      // The place passes straight to the next waiter, so nobody can overtake it.
      if (next) next.grant(this.#releaser());
      else this.#held--;
    };
  }
}
