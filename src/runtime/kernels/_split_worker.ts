/**
 * A helper thread of {@linkcode KernelHelpers} (split.ts): holds its slices of
 * quantized Conv and Gemm layers in its own WebAssembly instances and runs one
 * slice whenever the main thread signals through the shared control words.
 *
 * Messages in: `{ op: "init", control }`, `{ op: "conv" | "gemm", id, layer }` and
 * `{ op: "chain", id, spec }` (answered `{ id, error? }`), `{ op: "data", data, ack }`
 * (a larger data block) and `{ op: "buffer", id, data, ack }` (a buffer chains share;
 * both handlers set the ACK word), `{ op: "unbuffer" | "drop", id }`. Runs: see the
 * protocol in _split_protocol.ts.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { createQConvKernel, type QConvKernel } from "./qconv_wasm.ts";
import { createQLinearKernel, type QLinearKernel } from "./qlinear_wasm.ts";
import type { QConvWeights } from "./qconv_reference.ts";
import type { QLinearWeights } from "./qlinear_reference.ts";
import { CONTROL, spinFor } from "./_split_protocol.ts";
import { instantiateQ, type QExports } from "./q_wasm.ts";
import { type ChainSlice, createChainSlice } from "./_split_chain.ts";

type Piece =
  | { kind: "conv"; kernel: QConvKernel }
  | { kind: "gemm"; kernel: QLinearKernel }
  | { kind: "chain"; kernel: ChainSlice };

/**
 * How long the helper blocks in Atomics.wait for the next request before it goes back
 * to its event loop (ms): the layers of one inference come well within it, and so do
 * the next inference's under steady traffic. Blocked, it uses no CPU; set-up messages
 * kick it out (split.ts, `kick`).
 */
const BLOCKING_WAIT_MS = 1000;

const pieces = new Map<number, Piece>();
/** One instance for all of this helper's slices: their per-call blocks are reused. */
let shared: Promise<QExports> | undefined;
let control: Int32Array | undefined;
let controlF32: Float32Array | undefined;
let data: SharedArrayBuffer | undefined;
const buffers = new Map<number, SharedArrayBuffer>();

function runOne(c: Int32Array, f: Float32Array): void {
  const piece = pieces.get(c[CONTROL.LAYER]);
  if (piece?.kind === "chain") {
    const [inBuf, outBuf] = [buffers.get(c[CONTROL.IN_BUFFER]), buffers.get(c[CONTROL.OUT_BUFFER])];
    if (!inBuf || !outBuf) throw new Error(`no shared buffer for layer ${c[CONTROL.LAYER]}`);
    piece.kernel.run(
      new Float32Array(inBuf, c[CONTROL.IN_OFFSET], c[CONTROL.IN_LEN]),
      [c[CONTROL.N], c[CONTROL.C], c[CONTROL.H], c[CONTROL.W]],
      new Float32Array(outBuf, c[CONTROL.OUT_OFFSET], c[CONTROL.OUT_LEN]),
    );
    return;
  }
  if (!piece || !data) throw new Error(`no layer ${c[CONTROL.LAYER]}`);
  const inLen = c[CONTROL.IN_LEN], outLen = c[CONTROL.OUT_LEN];
  const x = new Float32Array(data, 0, inLen);
  const y = new Float32Array(data, c[CONTROL.OUT_OFFSET], outLen);
  const scale = f[CONTROL.X_SCALE], zero = c[CONTROL.X_ZERO], relu = c[CONTROL.RELU] !== 0;
  if (piece.kind === "conv") {
    const dims = [c[CONTROL.N], c[CONTROL.C], c[CONTROL.H], c[CONTROL.W]] as const;
    piece.kernel.run(x, dims, scale, zero, relu, y);
  } else {
    piece.kernel.run(x, c[CONTROL.N], scale, zero, relu, y);
  }
}

async function serve(c: Int32Array, f: Float32Array): Promise<void> {
  let seen = 0;
  for (;;) {
    // A short poll, then blocking: the next layer of an inference wakes it at once.
    // Then (timed out, or kicked for a set-up message) waitAsync, which keeps this
    // thread's event loop free for messages.
    if (!spinFor(c, CONTROL.REQUEST, (r) => r !== seen)) {
      Atomics.wait(c, CONTROL.REQUEST, seen, BLOCKING_WAIT_MS);
    }
    // A kick resolves waitAsync too, with no request: wait again after the messages.
    while (Atomics.load(c, CONTROL.REQUEST) === seen && Atomics.load(c, CONTROL.QUIT) === 0) {
      const w = Atomics.waitAsync(c, CONTROL.REQUEST, seen);
      if (w.async) await w.value;
    }
    seen = Atomics.load(c, CONTROL.REQUEST);
    if (Atomics.load(c, CONTROL.QUIT) !== 0) return;
    // The main thread ran this request itself (see CLAIM): nothing to do or report.
    if (Atomics.compareExchange(c, CONTROL.CLAIM, seen - 1, seen) !== seen - 1) continue;
    let status = 0;
    try {
      runOne(c, f);
    } catch (e) {
      console.error(`alexnet-edge kernel helper: ${(e as Error).message}`);
      status = 1;
    }
    Atomics.store(c, CONTROL.STATUS, status);
    Atomics.store(c, CONTROL.DONE, seen);
    Atomics.notify(c, CONTROL.DONE);
  }
}

/**
 * Where replies go: the Worker that started this helper, or the port a `{ op: "port" }`
 * message gave it (a helper the server's thread started for an inference Worker, which
 * then drives it over that port: Deno takes 0.5-1 s to start a Worker inside a Worker).
 */
let replies: { postMessage(message: unknown): void } = self;
const reply = (message: { id: number; error?: string }) => replies.postMessage(message);

const handle = async (e: MessageEvent) => {
  const msg = e.data;
  if (msg.op === "port") {
    const port = msg.port as MessagePort;
    replies = port;
    port.onmessage = handle;
  } else if (msg.op === "init") {
    control = new Int32Array(msg.control);
    controlF32 = new Float32Array(msg.control);
    serve(control, controlF32).then(() => self.close());
  } else if (msg.op === "data" || msg.op === "buffer") {
    if (msg.op === "data") data = msg.data;
    else buffers.set(msg.id, msg.data);
    Atomics.store(control!, CONTROL.ACK, msg.ack);
    Atomics.notify(control!, CONTROL.ACK);
  } else if (msg.op === "unbuffer") {
    buffers.delete(msg.id);
  } else if (msg.op === "chain") {
    try {
      shared ??= instantiateQ("Cannot load the int8 kernels in a helper");
      pieces.set(msg.id, { kind: "chain", kernel: await createChainSlice(msg.spec, await shared) });
      for (const s of msg.spec.ops) {
        for (const l of s.layers ?? []) (l.weights.buffer as ArrayBuffer).transfer(0);
      }
      reply({ id: msg.id });
    } catch (err) {
      reply({ id: msg.id, error: (err as Error).message });
    }
  } else if (msg.op === "conv" || msg.op === "gemm") {
    try {
      shared ??= instantiateQ("Cannot load the int8 kernels in a helper");
      const instance = await shared;
      pieces.set(
        msg.id,
        msg.op === "conv"
          ? {
            kind: "conv",
            kernel: await createQConvKernel({ ...msg.layer as QConvWeights, instance }),
          }
          : {
            kind: "gemm",
            kernel: await createQLinearKernel({ ...msg.layer as QLinearWeights, instance }),
          },
      );
      // The weights are packed into the kernel's memory now. Free their buffer at once:
      // an idle worker may not collect garbage for a long time.
      (msg.layer.weights.buffer as ArrayBuffer).transfer(0);
      reply({ id: msg.id });
    } catch (err) {
      reply({ id: msg.id, error: (err as Error).message });
    }
  } else if (msg.op === "drop") {
    pieces.get(msg.id)?.kernel.release();
    pieces.delete(msg.id);
  }
};
self.onmessage = handle;
