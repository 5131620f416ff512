import assert from "node:assert/strict";
import { ExplorerEngine } from "../../src/classify/explorer_engine.ts";
import { buildTinyModel } from "../_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };

async function tinyEngine() {
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/tiny.onnx`, buildTinyModel(16, 16));
  // A long grace: the abandoned run must end by itself, however loaded the machine.
  const engine = new ExplorerEngine(new URL(`file://${dir}/tiny.onnx`), [3, 16, 16], {
    graceMs: 60_000,
  });
  await engine.summary;
  return engine;
}

Deno.test({
  name:
    "an explorer call whose deadline passed is refused, one abandoned gets the reason at once, " +
    "and the engine still answers",
  ...t,
  async fn() {
    const engine = await tinyEngine();
    const x = () => new Float32Array(3 * 16 * 16).fill(0.5);
    await engine.features(x(), "r1"); // its session made, so that a run takes milliseconds
    const late = AbortSignal.abort(new DOMException("The deadline passed", "TimeoutError"));
    await assert.rejects(
      engine.features(x(), "r1", { signal: late }),
      (e) => e instanceof DOMException && e.name === "TimeoutError",
    );
    const controller = new AbortController();
    const call = engine.features(x(), "r1", { signal: controller.signal });
    controller.abort(new RangeError("client left"));
    await assert.rejects(call, (e) => e instanceof RangeError && e.message === "client left");
    const { dims } = await engine.features(x(), "r1");
    assert.deepEqual(dims, [4, 7, 7]);
    assert.equal(engine.closed, false, "a call that ends within the grace keeps its Worker");
    engine.close();
  },
});

Deno.test({
  name: "a closed explorer engine refuses calls",
  ...t,
  async fn() {
    const engine = await tinyEngine();
    engine.close(new Error("closed by the test"));
    await assert.rejects(engine.features(new Float32Array(1), "r1"), /closed/);
    assert.equal(engine.closed, true);
  },
});
