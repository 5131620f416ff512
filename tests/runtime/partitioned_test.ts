import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { encodeModel, floatValueInfo, node } from "../../src/graph/onnx.ts";
import {
  type ChainFactory,
  type CustomKernel,
  type KernelRegistry,
  lrnFactory,
} from "../../src/runtime/custom_ops.ts";
import { PartitionedRunner } from "../../src/runtime/partitioned.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const session = (b: Uint8Array) => ort.InferenceSession.create(b, { executionProviders: ["wasm"] });
const lrn = (x: string, y: string) =>
  node("LRN", [x], [y], { size: 3, alpha: { float: 0.5 }, beta: { float: 0.75 } });

/** x -> a -> b -> c -> y, and b -> d -> z: b is read twice. x: [1, 4, 3, 3] */
const bytes = encodeModel({
  name: "lrn_chain",
  node: [lrn("x", "a"), lrn("a", "b"), lrn("b", "c"), lrn("c", "y"), lrn("b", "z")],
  input: [floatValueInfo("x", [1, 4, 3, 3])],
  output: [floatValueInfo("y", [1, 4, 3, 3]), floatValueInfo("z", [1, 4, 3, 3])],
}, "tests");

/** A chain factory that runs the parts' own kernels one after the other; logs each run. */
function composing(seen: string[][]): ChainFactory {
  return async (parts) => {
    seen.push(parts.map((p) => p.node.output![0]));
    const kernels: CustomKernel[] = [];
    for (const p of parts) kernels.push(await lrnFactory(p));
    return {
      taken: parts.length,
      kernel: { run: (inputs) => kernels.reduce((x, k) => k.run(x), inputs) },
    };
  };
}

Deno.test({
  name: "a registry's chain takes runs of kernels that each feed only the next, same outputs",
  ...t,
  async fn() {
    const seen: string[][] = [];
    const plain: KernelRegistry = new Map([["LRN", lrnFactory]]);
    const chained: KernelRegistry = Object.assign(new Map([["LRN", lrnFactory]]), {
      chain: composing(seen),
    });
    const [a, b] = [
      await PartitionedRunner.create(bytes, plain, session),
      await PartitionedRunner.create(bytes, chained, session),
    ];
    // b is read by c and d: the first run stops there; c -> y is the second, d alone.
    assert.deepEqual(seen, [["a", "b"], ["c", "y"]]);
    assert.deepEqual(b.layout, [["LRN", "LRN"], ["LRN", "LRN"], ["LRN"]]);
    assert.deepEqual(b.kernelOps, ["LRN", "LRN", "LRN", "LRN", "LRN"]);
    const x = new ort.Tensor("float32", Float32Array.from({ length: 36 }, (_, i) => i / 7 - 2), [
      1,
      4,
      3,
      3,
    ]);
    const [ra, rb] = [await a.run({ x }, ["y", "z"]), await b.run({ x }, ["y", "z"])];
    for (const name of ["y", "z"]) {
      assert.deepEqual(rb.outputs[name].data, ra.outputs[name].data, name);
    }
    await Promise.all([a.release(), b.release()]);
  },
});
