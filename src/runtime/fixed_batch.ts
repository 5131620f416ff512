/**
 * Running a fixed-batch graph (the zoo files take [1, 3, 224, 224]) on any batch, as a
 * loop over the one session.
 *
 * @module
 */
import type { Backend, BackendOutput } from "./backend.ts";

/**
 * Lets a backend whose graph has a fixed batch of 1 (the zoo files: data_0
 * [1,3,224,224]) run any batch, as a loop of single images over the one
 * session: x: [N, C, H, W] -> N runs of [1, C, H, W] -> y: [N, K]. Other
 * backends are returned as they are.
 *
 * Looping rather than rewriting the graph's batch dimension: the files stay
 * byte-identical to their pinned sha256, there is no 244 MB decode and
 * re-encode at start-up, and runs on one onnxruntime-web session are queued
 * one at a time anyway (the server classifies one image per request).
 *
 * @example
 * ```ts
 * const backend = loopFixedBatch(await createWasmBackend(bytes, io));
 * await backend.run(x, [4, 3, 224, 224]); // y: [4, 1000]
 * ```
 */
export function loopFixedBatch(backend: Backend): Backend {
  if (backend.inputShape[0] !== 1) return backend;
  const run = async (input: Float32Array, dims: readonly number[]): Promise<BackendOutput> => {
    const [n, ...item] = dims;
    if (n === 1) return backend.run(input, dims);
    const size = item.reduce((a, b) => a * b, 1);
    const outs = await Promise.all(
      Array.from(
        { length: n },
        (_, i) => backend.run(input.slice(i * size, (i + 1) * size), [1, ...item]),
      ),
    );
    const k = outs[0]?.data.length ?? 0;
    const data = new Float32Array(n * k);
    outs.forEach((o, i) => data.set(o.data, i * k));
    return { data, dims: [n, ...(outs[0]?.dims.slice(1) ?? [])] };
  };
  // A proxy, not a copy: the backend's getters (queue depth and the like) stay live.
  return new Proxy(backend, {
    get(target, key) {
      if (key === "run") return run;
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
