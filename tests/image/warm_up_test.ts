import assert from "node:assert/strict";
import { warmUpImagePath } from "../../src/image/mod.ts";

Deno.test("the warm-up decodes its built-in JPEG and preprocesses it for the model", async () => {
  assert.equal(await warmUpImagePath(), 3 * 224 * 224);
  // And a spec of another size: the tensor follows it.
  const spec = {
    width: 32,
    height: 16,
    resize: { mode: "direct" as const },
    channelOrder: "BGR" as const,
    scale: 1,
    mean: [0, 0, 0] as [number, number, number],
    std: [1, 1, 1] as [number, number, number],
  };
  assert.equal(await warmUpImagePath(spec), 3 * 32 * 16);
});
