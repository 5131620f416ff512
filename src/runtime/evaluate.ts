/**
 * Running a whole model for its intermediate tensors (calibration, layer
 * inspection) on onnxruntime-web's wasm backend.
 *
 * @module
 */
import * as ort from "onnxruntime-web";
import type { Evaluate } from "../graph/quantize.ts";
import { availableCores } from "./wasm.ts";

/**
 * An {@linkcode Evaluate} that keeps one session for the model bytes it was
 * last given. Sets onnxruntime-web's thread count if nothing did before.
 *
 * @example
 * ```ts
 * const evaluate = wasmEvaluator("data_0", [1, 3, 224, 224]);
 * const { conv1_2 } = await evaluate(bytes, tensor, ["conv1_2"]);
 * ```
 */
export function wasmEvaluator(inputName: string, dims: number[]): Evaluate {
  if (!ort.env.wasm.numThreads) ort.env.wasm.numThreads = availableCores();
  let last: { bytes: Uint8Array; session: ort.InferenceSession } | undefined;
  return async (bytes, input, outputs) => {
    if (last?.bytes !== bytes) {
      await last?.session.release();
      last = {
        bytes,
        session: await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] }),
      };
    }
    const out = await last.session.run(
      { [inputName]: new ort.Tensor("float32", input, dims) },
      outputs,
    );
    return Object.fromEntries(outputs.map((n) => [n, out[n].data as Float32Array]));
  };
}
