/**
 * Counts the web Workers started and terminated, by script URL. Import it
 * before anything from src/: the explorer engine keeps `globalThis.Worker`
 * as it is when its module loads.
 *
 * @module
 */

/** Script URLs of the Workers started, and of those terminated, in order. */
export const workers = { started: [] as string[], terminated: [] as string[] };

const RealWorker = globalThis.Worker;

globalThis.Worker = class CountedWorker extends RealWorker {
  readonly #url: string;
  constructor(url: string | URL, options?: WorkerOptions) {
    super(url, options);
    this.#url = String(url);
    workers.started.push(this.#url);
  }
  override terminate(): void {
    workers.terminated.push(this.#url);
    super.terminate();
  }
};
