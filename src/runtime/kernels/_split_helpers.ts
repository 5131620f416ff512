/**
 * The threads of split kernels (split.ts): one helper Worker with its control words
 * and data block ({@linkcode Helper}: set-up messages, start, steal, finish), and the
 * pool of them that a model's split layers share ({@linkcode KernelHelpers}).
 *
 * @module
 */
import { CONTROL, CONTROL_WORDS, spinFor } from "./_split_protocol.ts";
import type { SliceSpec } from "./_split_chain.ts";
import type { QConvWeights } from "./qconv_reference.ts";
import type { QLinearWeights } from "./_q_args.ts";

/**
 * The Web Worker constructor, kept at load: when onnxruntime-web's wasm glue first
 * loads under Deno it takes itself for Node.js and sets `globalThis.Worker` to
 * `worker_threads.Worker` (whose workers have no `self`).
 */
const WebWorker: typeof Worker = globalThis.Worker;

function newHelperWorker(): Worker {
  if (WebWorker.name === "NodeWorker") {
    throw new TypeError(
      "Cannot start a kernel helper: import src/runtime/kernels/split.ts before " +
        "onnxruntime-web loads its WebAssembly (it replaces globalThis.Worker)",
    );
  }
  return new WebWorker(HELPER_URL, { type: "module" });
}

const HELPER_URL = new URL("./_split_worker.ts", import.meta.url);

/** A port as a helper's endpoint: terminating closes the port (QUIT ends the helper). */
function portEndpoint(port: MessagePort): HelperEndpoint {
  return {
    postMessage: (message, transfer = []) => port.postMessage(message, transfer),
    get onmessage() {
      return port.onmessage;
    },
    set onmessage(handler) {
      port.onmessage = handler;
    },
    terminate: () => port.close(),
  };
}

/**
 * Starts a helper Worker on this thread to be driven from another one (an inference
 * Worker) over the returned port: from this thread it starts in ~50 ms, from inside a Worker
 * Deno 2.9 takes 0.5-1 s. Hand the port to {@linkcode adoptHelpers} there; the helper ends
 * when that side's pool stops it, or with `worker.terminate()` here.
 *
 * @example
 * ```ts
 * const { worker, port } = startHelperWorker();
 * inferenceWorker.postMessage({ ports: [port] }, [port]); // there: adoptHelpers([port])
 * ```
 */
export function startHelperWorker(): { worker: Worker; port: MessagePort } {
  const worker = newHelperWorker();
  const { port1, port2 } = new MessageChannel();
  worker.postMessage({ op: "port", port: port2 }, [port2]);
  return { worker, port: port1 };
}

/** Helpers another thread started, for the next {@linkcode KernelHelpers} to take. */
const spare: Helper[] = [];

/**
 * Takes up helpers that another thread started ({@linkcode startHelperWorker}) for the next
 * pool made here: its first `ports.length` helpers are these instead of new Workers.
 *
 * @example
 * ```ts
 * adoptHelpers(ports); // then: kernelRegistry("ort", "custom", { threads: ports.length + 1 })
 * ```
 */
export function adoptHelpers(ports: MessagePort[]): void {
  for (const port of ports) spare.push(new Helper(port));
}

/** How long the main thread waits for a helper before it gives up (ms). */
const HELPER_TIMEOUT_MS = 60_000;

/** How a helper is driven: its Worker, or a port to one another thread started. */
export interface HelperEndpoint {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent) => void) | null;
  terminate(): void;
}

/** One helper Worker and its shared blocks. */
export class Helper {
  readonly worker: HelperEndpoint;
  readonly control = new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));
  readonly controlF32 = new Float32Array(this.control.buffer);
  data = new SharedArrayBuffer(0);
  #replies = new Map<number, (error?: string) => void>();
  #kicks = new Set<ReturnType<typeof setInterval>>();
  #request = 0;
  #ack = 0;

  /** `port`: a helper another thread started ({@linkcode startHelperWorker}), else a new one. */
  constructor(port?: MessagePort) {
    this.worker = port ? portEndpoint(port) : newHelperWorker();
    this.worker.onmessage = (e: MessageEvent) => {
      this.#replies.get(e.data.id)?.(e.data.error);
      this.#replies.delete(e.data.id);
    };
    this.worker.postMessage({ op: "init", control: this.control.buffer });
  }

  /** Creates a layer slice in the worker; the weights are transferred, not copied. */
  add(id: number, op: "conv" | "gemm", layer: QConvWeights | QLinearWeights): Promise<void> {
    return this.#create({ op, id, layer }, [layer.weights.buffer as ArrayBuffer]);
  }

  /** Creates a chain slice in the worker; its pieces' weights are transferred. */
  addChain(id: number, spec: SliceSpec): Promise<void> {
    const weights = spec.ops.flatMap((s) =>
      s.op === "conv" ? s.layers.map((l) => l.weights.buffer as ArrayBuffer) : []
    );
    return this.#create({ op: "chain", id, spec }, weights);
  }

  #create(
    message: { id: number; op: string; [k: string]: unknown },
    transfer: ArrayBuffer[],
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      // Kicked each millisecond until it answers: a helper that enters Atomics.wait just
      // after a kick misses it and would read the message only after BLOCKING_WAIT_MS (1 s;
      // the 2-thread start took 1.1 s instead of ~0.1 s on the synthetic int8 AlexNet).
      const kicks = setInterval(() => this.kick(), 1);
      this.#kicks.add(kicks);
      this.#replies.set(message.id, (error) => {
        clearInterval(kicks);
        this.#kicks.delete(kicks);
        if (error) reject(new Error(error));
        else resolve();
      });
      this.worker.postMessage(message, transfer);
      this.kick();
    });
  }

  /** Sends the helper to its event loop (from `Atomics.wait`), where messages wait. */
  kick(): void {
    Atomics.notify(this.control, CONTROL.REQUEST);
  }

  /** Posts a set-up message and blocks until the helper has handled it. */
  acked(message: Record<string, unknown>, action: string): void {
    const ack = ++this.#ack;
    this.worker.postMessage({ ...message, ack });
    const deadline = performance.now() + HELPER_TIMEOUT_MS;
    // Kicked again each millisecond: a helper just entering Atomics.wait misses a notify.
    while (Atomics.load(this.control, CONTROL.ACK) !== ack) {
      if (performance.now() > deadline) {
        throw new Error(`${action}: a kernel helper did not answer`);
      }
      this.kick();
      Atomics.wait(this.control, CONTROL.ACK, Atomics.load(this.control, CONTROL.ACK), 1);
    }
  }

  /** A data block of at least `bytes`, handed to the worker (blocks until it has it). */
  reserve(bytes: number): SharedArrayBuffer {
    if (this.data.byteLength < bytes) {
      this.data = new SharedArrayBuffer(Math.ceil(bytes / 65536) * 65536);
      this.acked({ op: "data", data: this.data }, "Cannot hand a kernel helper its buffer");
    }
    return this.data;
  }

  /** Starts the layer whose fields and input the caller wrote. */
  start(): number {
    const request = ++this.#request;
    Atomics.store(this.control, CONTROL.REQUEST, request);
    Atomics.notify(this.control, CONTROL.REQUEST);
    return request;
  }

  /** Claims request `request` for the main thread; false when the helper has it. */
  steal(request: number): boolean {
    return Atomics.compareExchange(this.control, CONTROL.CLAIM, request - 1, request) ===
      request - 1;
  }

  /** Blocks until request `request` is done; throws when the helper failed. */
  finish(request: number, action: string): void {
    spinFor(this.control, CONTROL.DONE, (done) => done === request);
    waitFor(this.control, CONTROL.DONE, request, action);
    if (Atomics.load(this.control, CONTROL.STATUS) !== 0) {
      throw new Error(`${action}: a kernel helper failed (its error is in the log)`);
    }
  }

  drop(id: number): void {
    this.worker.postMessage({ op: "drop", id });
  }

  terminate(): void {
    for (const kicks of this.#kicks) clearInterval(kicks);
    this.#kicks.clear();
    Atomics.store(this.control, CONTROL.QUIT, 1);
    this.kick();
    this.worker.terminate();
  }
}

/** Blocks the thread until `words[index]` equals `value` (or throws after the timeout). */
function waitFor(words: Int32Array, index: number, value: number, action: string): void {
  const deadline = performance.now() + HELPER_TIMEOUT_MS;
  for (;;) {
    const now = Atomics.load(words, index);
    if (now === value) return;
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`${action}: a kernel helper did not answer`);
    Atomics.wait(words, index, now, left);
  }
}

/**
 * Helper Workers for splitting layers across `threads` threads (the main thread is
 * one of them). Made lazily: nothing starts until the first split layer.
 *
 * @example
 * ```ts
 * import { createSplitConvKernel, KernelHelpers } from "./split.ts";
 *
 * const helpers = new KernelHelpers(2);
 * const conv = await createSplitConvKernel(layer, helpers); // half in a Worker
 * conv.release(); // the last release stops the Worker
 * ```
 */
export class KernelHelpers {
  readonly threads: number;
  #helpers: Helper[] | undefined;
  #nextId = 1;
  #users = 0;
  /** Buffers every helper holds, by id (chains read and write them). */
  #buffers = new Map<ArrayBufferLike, number>();
  #nextBuffer = 1;

  constructor(threads: number) {
    if (!Number.isInteger(threads) || threads < 1) {
      throw new RangeError(`Cannot start kernel helpers: threads must be >= 1, got ${threads}`);
    }
    this.threads = threads;
  }

  /** @internal */
  acquire(): { helpers: Helper[]; id: number } {
    this.#helpers ??= Array.from({ length: this.threads - 1 }, () => spare.shift() ?? new Helper());
    this.#users++;
    return { helpers: this.#helpers, id: this.#nextId++ };
  }

  /** @internal */
  releaseOne(id: number): void {
    if (!this.#helpers) return;
    for (const h of this.#helpers) h.drop(id);
    if (--this.#users === 0) {
      for (const h of this.#helpers) h.terminate();
      this.#helpers = undefined;
      this.#buffers.clear();
    }
  }

  /** @internal Hands `data` to every helper (blocks until they have it); its id. */
  share(data: SharedArrayBuffer): number {
    const id = this.#nextBuffer++;
    for (const h of this.#helpers ?? []) {
      h.acked({ op: "buffer", id, data }, "Cannot hand a kernel helper a shared buffer");
    }
    this.#buffers.set(data, id);
    return id;
  }

  /** @internal Lets the helpers drop a buffer from {@linkcode share}. */
  unshare(data: SharedArrayBuffer): void {
    const id = this.#buffers.get(data);
    if (id === undefined) return;
    this.#buffers.delete(data);
    for (const h of this.#helpers ?? []) h.worker.postMessage({ op: "unbuffer", id });
  }

  /** @internal The id of a shared buffer every helper holds, if `data` is one. */
  bufferId(data: ArrayBufferLike): number | undefined {
    return this.#buffers.get(data);
  }
}
