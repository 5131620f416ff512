import assert from "node:assert/strict";
import {
  findCycles,
  findFloorBreaks,
  findPrivateImports,
  findUnused,
  type Graph,
} from "../../tools/check_imports.ts";

const graph = (edges: Record<string, string[]>): Graph =>
  new Map(Object.entries(edges).map(([k, v]) => [k, new Set(v)]));

Deno.test("findCycles names each loop of files once, and no acyclic chain", () => {
  const g = graph({
    "src/a/x.ts": ["src/a/y.ts"],
    "src/a/y.ts": ["src/a/z.ts"],
    "src/a/z.ts": ["src/a/x.ts"],
    "src/b/p.ts": ["src/b/q.ts"],
    "src/b/q.ts": [],
  });
  assert.deepEqual(findCycles(g), [["src/a/x.ts", "src/a/y.ts", "src/a/z.ts"]]);
  assert.deepEqual(findCycles(graph({ "src/a.ts": ["src/b.ts"], "src/b.ts": [] })), []);
});

Deno.test("findPrivateImports flags a `_` file reached from another folder, not from a subfolder", () => {
  const g = graph({
    "src/api/x.ts": ["src/runtime/_queue.ts", "src/api/_files.ts"],
    "src/api/v2/y.ts": ["src/api/_files.ts"],
  });
  assert.deepEqual(findPrivateImports(g), ["src/api/x.ts -> src/runtime/_queue.ts"]);
});

Deno.test("findFloorBreaks flags a leaf folder importing up, and allows its own folder", () => {
  const g = graph({
    "src/graph/onnx.ts": ["src/errors.ts", "src/graph/attrs.ts"],
    "src/graph/quantize.ts": ["src/runtime/wasm.ts"],
    "src/api/app.ts": ["src/runtime/wasm.ts"],
  });
  assert.equal(findFloorBreaks(g).length, 1);
  assert.match(findFloorBreaks(g)[0], /^src\/graph\/quantize\.ts -> src\/runtime\/wasm\.ts/);
});

Deno.test("findUnused flags a src/ file no root reaches, following Worker URLs, sparing references", () => {
  const g = graph({
    "main.ts": ["src/a.ts"],
    "src/a.ts": [],
    "src/_worker.ts": ["src/b.ts"],
    "src/b.ts": [],
    "src/orphan.ts": [],
    "src/x_reference.ts": [],
  });
  const workers = graph({ "src/a.ts": ["src/_worker.ts"] });
  assert.deepEqual(findUnused(g, ["main.ts"], workers), ["src/orphan.ts"]);
  assert.deepEqual(findUnused(g, ["main.ts"], graph({})), [
    "src/_worker.ts",
    "src/b.ts",
    "src/orphan.ts",
  ]);
});
