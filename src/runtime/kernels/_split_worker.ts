/**
 * A helper thread of {@linkcode KernelHelpers} (split.ts): holds its slices of
 * quantized Conv and Gemm layers in its own WebAssembly instances and runs one
 * slice whenever the main thread signals through the shared control words.
 *
 * Messages in: `{ op: "init", control }`, `{ op: "conv" | "gemm", id, layer }`
 * (answered `{ id, error? }`), `{ op: "data", data, ack }` (a larger data block; the
 * handler sets the ACK word). Runs: see the protocol in split.ts.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { createQConvKernel, type QConvKernel } from "./qconv_wasm.ts";
import { createQLinearKernel, type QLinearKernel } from "./qlinear_wasm.ts";
import type { QConvWeights } from "./qconv_reference.ts";
import type { QLinearWeights } from "./qlinear_reference.ts";
import { CONTROL } from "./_split_protocol.ts";
import { instantiateQ, type QExports } from "./_q_wasm.ts";

type Piece = { kind: "conv"; kernel: QConvKernel } | { kind: "gemm"; kernel: QLinearKernel };

const pieces = new Map<number, Piece>();
/** One instance for all of this helper's slices: their per-call blocks are reused. */
let shared: Promise<QExports> | undefined;
let control: Int32Array | undefined;
let controlF32: Float32Array | undefined;
let data: SharedArrayBuffer | undefined;

function runOne(c: Int32Array, f: Float32Array): void {
  const piece = pieces.get(c[CONTROL.LAYER]);
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
    // waitAsync keeps this thread's event loop free for set-up messages.
    const w = Atomics.waitAsync(c, CONTROL.REQUEST, seen);
    if (w.async) await w.value;
    seen = Atomics.load(c, CONTROL.REQUEST);
    if (Atomics.load(c, CONTROL.QUIT) !== 0) return;
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

self.onmessage = async (e: MessageEvent) => {
  const msg = e.data;
  if (msg.op === "init") {
    control = new Int32Array(msg.control);
    controlF32 = new Float32Array(msg.control);
    serve(control, controlF32).then(() => self.close());
  } else if (msg.op === "data") {
    data = msg.data;
    Atomics.store(control!, CONTROL.ACK, msg.ack);
    Atomics.notify(control!, CONTROL.ACK);
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
      self.postMessage({ id: msg.id });
    } catch (err) {
      self.postMessage({ id: msg.id, error: (err as Error).message });
    }
  } else if (msg.op === "drop") {
    pieces.get(msg.id)?.kernel.release();
    pieces.delete(msg.id);
  }
};
