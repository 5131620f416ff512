/**
 * The inference Worker (and each Worker of a `--workers N` pool): a whole
 * classifier's work off the server's thread. It holds one wasm session (our
 * kernels included; `threads` intra-op threads) and decodes and preprocesses
 * images itself, so neither a slow decode nor an inference blocks the
 * server's event loop. Its log lines (what became of a QOperator model, ...)
 * reach the server's log through src/host/messages.ts.
 *
 * Methods ({@linkcode ClassifierMethods}): `init` once, then `run`,
 * `capture`, `classify` (decode -> preprocess -> run one image) and
 * `prepare` (decode -> preprocess only). Errors cross as `{ code, message }`,
 * so a decode error keeps its 4xx.
 *
 * @module
 */
import { type Handlers, movable, Moved, serveMessages, workerLogger } from "../host/mod.ts";
import { decodeImage, preprocess, type PreprocessSpec, warmUpImagePath } from "../image/mod.ts";
import type { Backend, BackendOutput } from "../runtime/backend.ts";
import { loopFixedBatch } from "../runtime/fixed_batch.ts";
import { adoptHelperThreads, createWasmBackend, type WasmBackendOptions } from "../runtime/wasm.ts";

/** What the Worker needs of the session's options (functions such as a logger cannot be posted). */
export type WorkerSessionOptions = Pick<
  WasmBackendOptions,
  "inputName" | "outputName" | "lrn" | "int8" | "threads"
>;

/** What `init` answers: the session as the server describes it. */
export interface WorkerReady {
  inputShape: (number | null)[];
  kernels: Backend["kernels"];
  threads: number;
}

/** One encoded image and how to read it. */
export interface ImageJob {
  bytes: Uint8Array;
  maxPixels?: number;
  spec: PreprocessSpec;
}

/** x: [N, C, H, W]. */
export interface TensorJob {
  data: Float32Array;
  dims: number[];
}

/** A run of one image with the time its decode and preprocess took (ms). */
export type ImageRun = BackendOutput & { timings: { decode: number; preprocess: number } };

/** The inference Worker's methods. */
export type ClassifierMethods = {
  /** Before the model: helper Workers the server's thread started for this one (src/classify/worker_backend.ts, EarlyWorker). */
  helpers: { body: { ports: MessagePort[] }; result: null };
  init: { body: { model: Uint8Array; options: WorkerSessionOptions }; result: WorkerReady };
  run: { body: TensorJob; result: BackendOutput };
  capture: { body: TensorJob; result: Record<string, BackendOutput> };
  classify: { body: ImageJob; result: ImageRun };
  prepare: { body: ImageJob; result: Float32Array };
};

const log = workerLogger();
let backend: Backend | undefined;
/** The threads a session gets with the helpers given by `helpers` (0: none given). */
let adopted = 0;

function session(): Backend {
  if (!backend) throw new TypeError("Cannot run the model: the Worker has no session yet");
  return backend;
}

/** Decode -> preprocess, x: [1, 3, H, W], timing both as Classifier.classify does. */
async function prepareTimed({ bytes, maxPixels, spec }: ImageJob) {
  const t0 = performance.now();
  // fitFor lets a large JPEG decode at 1/2..1/8 scale in the DCT domain.
  const image = await decodeImage(bytes, { maxPixels, fitFor: spec });
  const t1 = performance.now();
  const x = preprocess(image, spec);
  const t2 = performance.now();
  return { x, decode: t1 - t0, preprocess: t2 - t1 };
}

const handlers: Handlers<ClassifierMethods> = {
  helpers({ ports }) {
    adoptHelperThreads(ports);
    adopted = ports.length + 1;
    return Promise.resolve(null);
  },
  async init({ model, options }) {
    // The model is this Worker's own copy: nothing else here needs it once the session is made.
    // Graphs with a fixed batch of 1 (the zoo files) run larger batches as a loop, here.
    const eager = adopted > 1 && adopted === options.threads;
    backend = loopFixedBatch(
      await createWasmBackend(model, {
        ...options,
        threads: options.threads ?? 1,
        // Helpers started by the server's thread start in tens of ms, not the 0.5-1 s of a
        // Worker started here: they join at once, and the weights are packed only once.
        eagerThreads: eager,
        releaseModel: true,
        log: (line) => log.info(line),
      }),
    );
    const { inputShape, kernels, threads } = backend;
    if (eager) log.info(`Our kernels run on ${threads} threads from the start (helpers given)`);
    return { inputShape: [...inputShape], kernels, threads };
  },
  async run({ data, dims }) {
    const out = await session().run(data, dims);
    return new Moved(out, movable(out.data));
  },
  async capture({ data, dims }) {
    const out = await session().capture(data, dims);
    return new Moved(out, movable(...Object.values(out).map((o) => o.data)));
  },
  async classify(job) {
    const { x, decode, preprocess } = await prepareTimed(job);
    const out = await session().run(x, [1, 3, job.spec.height, job.spec.width]);
    return new Moved({ ...out, timings: { decode, preprocess } }, movable(out.data));
  },
  async prepare(job) {
    const { x } = await prepareTimed(job);
    return new Moved(x, movable(x));
  },
};

serveMessages(handlers);
// While the server's thread reads the model: the first request then decodes warm.
void warmUpImagePath();
