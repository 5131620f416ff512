import assert from "node:assert/strict";
import { parseLabels, parseManifest } from "../../src/model/manifest.ts";
import { syntheticManifest } from "../../src/model/store.ts";
import { ClassifierError } from "../../src/errors.ts";

Deno.test("the synthetic manifest passes validation", () => {
  const m = syntheticManifest(1);
  assert.deepEqual(parseManifest(structuredClone(m)), m);
});

Deno.test("a manifest with a bad field is refused with a message naming it", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ name: "" }, /"name"/],
    [{ output: { name: "y", kind: "scores" } }, /"output"/],
    [{ preprocessing: { ...syntheticManifest(1).preprocessing, width: 0 } }, /width/],
    [
      { preprocessing: { ...syntheticManifest(1).preprocessing, channelOrder: "GRB" } },
      /channelOrder/,
    ],
    [{ preprocessing: { ...syntheticManifest(1).preprocessing, std: [1, 0, 1] } }, /std/],
    [{
      preprocessing: {
        ...syntheticManifest(1).preprocessing,
        resize: { mode: "shorter_side", size: 100 },
      },
    }, /size/],
    [{ provenance: { kind: "borrowed" } }, /provenance/],
  ];
  for (const [patch, pattern] of cases) {
    const json = { ...syntheticManifest(1), ...patch };
    assert.throws(() => parseManifest(json, "m.json"), (e: unknown) => {
      assert.ok(e instanceof ClassifierError);
      assert.equal(e.code, "model_invalid");
      assert.match(e.message, /^Cannot load manifest m\.json: /);
      assert.match(e.message, pattern);
      return true;
    });
  }
  assert.throws(() => parseManifest([1, 2]), /not a JSON object/);
});

Deno.test("labels parse from a JSON array or one per line", () => {
  assert.deepEqual(parseLabels('["a", "b c"]'), ["a", "b c"]);
  assert.deepEqual(parseLabels("a\r\nb c\n"), ["a", "b c"]);
  assert.throws(() => parseLabels("[1, 2]"), /expected strings/);
});

Deno.test("the shipped ImageNet labels have 1000 classes in the standard order", async () => {
  const labels = parseLabels(
    await Deno.readTextFile(new URL("../../models/imagenet_labels.json", import.meta.url)),
  );
  assert.equal(labels.length, 1000);
  assert.equal(labels[0], "tench, Tinca tinca");
  assert.equal(labels[281], "tabby, tabby cat");
  assert.equal(labels[999], "toilet tissue, toilet paper, bathroom tissue");
});
