/**
 * Workers under supervision: a bounded queue in front of N Workers that each
 * answer `callsPerWorker` calls at a time (default one; {@linkcode WorkerChannel}),
 * and a supervisor that keeps them alive.
 *
 * - A call still waiting when its signal aborts leaves the queue and never
 *   runs; the caller gets the signal's reason.
 * - A call running when its signal aborts (the request's deadline, or its
 *   client left) is abandoned: the caller gets the reason at once. Its Worker
 *   has `graceMs` to finish it; one still busy then is stuck (a decode or an
 *   inference that nothing inside can cut off) and is terminated and replaced.
 * - A Worker that dies (an uncaught error, a crash, `terminate`) is replaced
 *   the same way; the call it was running fails with 503 `not_ready`.
 * - Each replacement is logged with why. While no Worker can take calls,
 *   {@linkcode Supervisor.state} is `restarting` (readiness says so) and calls
 *   wait in the queue for the fresh Worker, within their own deadlines.
 *
 * @module
 */
import { ClassifierError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { QueueFullError } from "./bounded_queue.ts";
import type { ChannelOptions, Methods, WorkerChannel } from "./messages.ts";

/** Whether the Workers can take calls. */
export type HostStatus = "ready" | "restarting" | "failed";

/** {@linkcode Supervisor.state}: the status, and why when not ready. */
export interface HostState {
  status: HostStatus;
  /** Why the Workers are restarting or failed, as a message for users (no paths). */
  reason?: string;
}

/** Options of {@linkcode Supervisor.start}. */
export interface SupervisorOptions<M extends Methods> {
  /**
   * Starts one Worker and resolves once it can take calls (its set-up done);
   * pass `channel` to the {@linkcode WorkerChannel} it makes. Called again for
   * each replacement.
   */
  start: (channel: ChannelOptions) => Promise<WorkerChannel<M>>;
  /** How the Workers are named in log lines and errors ("inference Worker"). */
  what: string;
  /** Workers (default 1). */
  workers?: number;
  /**
   * Calls one Worker holds at once (default 1). More than one lets a call that
   * yields (a large PNG decoding in slices) share its Worker with the next one,
   * whose work the Worker's own code must then order (the wasm backend queues runs).
   */
  callsPerWorker?: number;
  /** Most calls waiting plus running; one more is refused with QueueFullError (default: unbounded). */
  capacity?: number;
  /** Where replacements and the Workers' own lines are logged. */
  logger?: Logger;
  /** How long an abandoned call may still run before its Worker is replaced (ms, default 1000). */
  graceMs?: number;
  /** Failed starts in a row before the supervisor gives up (default 3). */
  maxFailedStarts?: number;
  /** Delay before retrying a failed start (ms, default 500). */
  retryMs?: number;
}

/** Options of one {@linkcode Supervisor.call}. */
export interface CallOptions {
  /** Aborting it drops the call if waiting, or abandons it if running (see the module doc). */
  signal?: AbortSignal;
  /** Buffers of the body to move to the Worker rather than copy. */
  transfer?: Transferable[];
}

interface Job {
  method: string;
  body: unknown;
  transfer: Transferable[];
  signal?: AbortSignal;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
  /** The caller has been answered (aborted): a late result is dropped. */
  abandoned: boolean;
  onAbort?: () => void;
  /** Set once the call was abandoned while running: its Worker's time to finish it. */
  grace?: ReturnType<typeof setTimeout>;
}

interface Member {
  index: number;
  channel?: WorkerChannel<Methods>;
  /** The calls it is running. */
  jobs: Set<Job>;
  /** A fresh Worker is being started for it. */
  starting?: boolean;
  failedStarts: number;
}

/**
 * N supervised Workers behind one queue.
 *
 * @example
 * ```ts
 * const host = await Supervisor.start<Echo>({
 *   what: "echo Worker",
 *   start: (channel) => Promise.resolve(new WorkerChannel(startWorker(url, "echo"), channel)),
 * });
 * await host.call("echo", "hi", { signal: AbortSignal.timeout(1000) });
 * host.close();
 * ```
 */
export class Supervisor<M extends Methods> {
  readonly #options: SupervisorOptions<M>;
  readonly #members: Member[];
  readonly #waiting: Job[] = [];
  readonly #capacity: number;
  readonly #callsPerWorker: number;
  #failure?: string;
  #restartReason = "";
  #closed = false;
  #replaced = 0;

  private constructor(options: SupervisorOptions<M>, channels: WorkerChannel<M>[]) {
    this.#options = options;
    this.#capacity = options.capacity ?? Infinity;
    this.#callsPerWorker = options.callsPerWorker ?? 1;
    this.#members = channels.map((_, index) => ({ index, jobs: new Set(), failedStarts: 0 }));
    channels.forEach((c, i) => this.#adopt(this.#members[i], c));
  }

  /**
   * Starts `options.workers` Workers; rejects with the first one's reason
   * when any cannot start (the others are closed).
   */
  static async start<M extends Methods>(options: SupervisorOptions<M>): Promise<Supervisor<M>> {
    const count = options.workers ?? 1;
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(`Cannot start ${count} ${options.what}s: expected 1 or more`);
    }
    // The channel options are bound to members once the supervisor exists.
    const exits: ((why: string) => void)[] = [];
    const started = await Promise.allSettled(
      Array.from({ length: count }, (_, i) =>
        options.start({
          logger: options.logger,
          fields: count > 1 ? { worker: i } : undefined,
          onExit: (why) => exits[i]?.(why),
        })),
    );
    const failed = started.find((s) => s.status === "rejected");
    if (failed) {
      for (const s of started) if (s.status === "fulfilled") s.value.close();
      throw (failed as PromiseRejectedResult).reason;
    }
    const channels = started.map((s) => (s as PromiseFulfilledResult<WorkerChannel<M>>).value);
    const host = new Supervisor(options, channels);
    channels.forEach((_, i) => (exits[i] = (why) => host.#replace(host.#members[i], why)));
    return host;
  }

  /** Calls waiting or running. */
  get queueDepth(): number {
    return this.#waiting.length + this.#members.reduce((n, m) => n + m.jobs.size, 0);
  }

  /** Workers started to replace others since the start. */
  get replaced(): number {
    return this.#replaced;
  }

  /** `ready` while any Worker can take calls; `restarting` while none can yet; `failed` for good. */
  get state(): HostState {
    if (this.#failure) return { status: "failed", reason: this.#failure };
    if (this.#members.some((m) => m.channel)) return { status: "ready" };
    return { status: "restarting", reason: this.#restartReason };
  }

  /**
   * Runs `method` on the next free Worker, after the calls queued before it.
   * Rejects at once with QueueFullError when `capacity` calls are held.
   */
  call<K extends keyof M & string>(
    method: K,
    body: M[K]["body"],
    options: CallOptions = {},
  ): Promise<M[K]["result"]> {
    const { signal, transfer = [] } = options;
    if (this.#failure) return Promise.reject(new ClassifierError("not_ready", this.#failure));
    if (this.#closed) {
      return Promise.reject(
        new TypeError(`Cannot run the call: the ${this.#options.what}s are closed`),
      );
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.queueDepth >= this.#capacity) {
      return Promise.reject(new QueueFullError(this.#capacity));
    }
    return new Promise((resolve, reject) => {
      const job: Job = { method, body, transfer, signal, resolve, reject, abandoned: false };
      if (signal) {
        job.onAbort = () => this.#abort(job);
        signal.addEventListener("abort", job.onAbort, { once: true });
      }
      this.#waiting.push(job);
      this.#pump();
    });
  }

  /**
   * Terminates Worker `index` and starts a fresh one, logging `why`: what the
   * supervisor does to a stuck Worker, open to tests and operators.
   */
  restart(index: number, why: string): void {
    const member = this.#members[index];
    if (!member) {
      throw new RangeError(`Cannot restart ${this.#options.what} ${index}: no such Worker`);
    }
    this.#replace(member, why);
  }

  /** Terminates every Worker; calls waiting or running reject. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const reason = new TypeError(`Cannot run the call: the ${this.#options.what}s were closed`);
    for (const job of this.#waiting.splice(0)) this.#settle(job, false, reason);
    for (const member of this.#members) {
      for (const job of member.jobs) clearTimeout(job.grace);
      member.channel?.close(reason);
      member.channel = undefined;
    }
  }

  #adopt(member: Member, channel: WorkerChannel<M>): void {
    member.channel = channel as unknown as WorkerChannel<Methods>;
    member.failedStarts = 0;
  }

  /** Hands waiting calls to the least busy Workers that have room. */
  #pump(): void {
    while (this.#waiting.length > 0) {
      let free: Member | undefined;
      for (const m of this.#members) {
        if (!m.channel || m.jobs.size >= this.#callsPerWorker) continue;
        if (!free || m.jobs.size < free.jobs.size) free = m;
      }
      if (!free) return;
      this.#begin(free, free.channel!, this.#waiting.shift()!);
    }
  }

  #begin(member: Member, channel: WorkerChannel<Methods>, job: Job): void {
    member.jobs.add(job);
    const done = (ok: boolean, value: unknown) => {
      member.jobs.delete(job);
      clearTimeout(job.grace);
      this.#settle(job, ok, value);
      this.#pump();
    };
    channel.call(job.method, job.body, job.transfer).then(
      (result) => done(true, result),
      (error) => done(false, error),
    );
  }

  #settle(job: Job, ok: boolean, value: unknown): void {
    if (job.onAbort) job.signal!.removeEventListener("abort", job.onAbort);
    if (job.abandoned) return;
    job.abandoned = true;
    if (ok) job.resolve(value);
    else job.reject(value);
  }

  /** A call's signal aborted: drop it if waiting; abandon it if running, and watch its Worker. */
  #abort(job: Job): void {
    const reason = job.signal!.reason;
    const at = this.#waiting.indexOf(job);
    if (at >= 0) {
      this.#waiting.splice(at, 1);
      this.#settle(job, false, reason);
      return;
    }
    const member = this.#members.find((m) => m.jobs.has(job));
    this.#settle(job, false, reason);
    if (!member) return;
    const graceMs = this.#options.graceMs ?? 1000;
    job.grace = setTimeout(() => {
      if (member.jobs.has(job)) {
        this.#replace(member, `was still busy ${graceMs} ms after its call's deadline`);
      }
    }, graceMs);
  }

  /** Ends `member`'s Worker (if alive) and starts a fresh one. */
  #replace(member: Member, why: string): void {
    if (this.#closed || this.#failure || member.starting) return;
    const { what, logger } = this.#options;
    for (const job of member.jobs) clearTimeout(job.grace);
    // Its calls end with the old channel (503 below); the fresh Worker starts empty.
    member.jobs = new Set();
    const old = member.channel;
    member.channel = undefined;
    // The calls it was running (if any) fail with 503: the Worker is gone, not the request.
    old?.close(new ClassifierError("not_ready", `Cannot classify: the ${what} stopped; retry`));
    this.#restartReason = `Cannot classify yet: the ${what} is restarting; retry in a few seconds`;
    this.#replaced++;
    logger?.warn(`The ${what} ${why}: starting a fresh one`, {
      worker: member.index,
      reason: why,
    });
    this.#startAgain(member);
  }

  #startAgain(member: Member): void {
    const { start, what, logger, maxFailedStarts = 3, retryMs = 500 } = this.#options;
    const started = performance.now();
    member.starting = true;
    start({
      logger,
      fields: this.#members.length > 1 ? { worker: member.index } : undefined,
      onExit: (why) => this.#replace(member, why),
    }).then((channel) => {
      member.starting = false;
      if (this.#closed) return channel.close();
      this.#adopt(member, channel);
      logger?.info(`The ${what} is ready again`, {
        worker: member.index,
        start_ms: Math.round(performance.now() - started),
      });
      this.#pump();
    }, (e) => {
      member.starting = false;
      member.failedStarts++;
      logger?.error(`Cannot restart the ${what}: ${(e as Error).message}`, {
        worker: member.index,
        attempt: member.failedStarts,
      });
      if (member.failedStarts < maxFailedStarts) {
        setTimeout(() => !this.#closed && this.#startAgain(member), retryMs);
      } else if (!this.#members.some((m) => m.channel)) {
        this.#giveUp();
      }
    });
  }

  #giveUp(): void {
    this.#failure = `Cannot classify: the ${this.#options.what} stopped and could not be ` +
      "restarted; restart the server";
    const error = new ClassifierError("not_ready", this.#failure);
    for (const job of this.#waiting.splice(0)) this.#settle(job, false, error);
  }
}
