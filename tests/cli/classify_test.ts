import assert from "node:assert/strict";
import { loadClassifier } from "../../src/classify/load.ts";
import { writeTinyModel } from "../_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const CLI = new URL("../../src/cli/classify.ts", import.meta.url).pathname;
const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;

async function runCli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "--allow-sys", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test({
  name: "classify --json prints the same answer as the classifier, one line per file",
  ...t,
  async fn() {
    const paths = await writeTinyModel(64, 48);
    const files = [`${FIXTURES}chelsea.jpg`, `${FIXTURES}rocket.jpg`];
    const { code, stdout, stderr } = await runCli([
      "--json",
      "--top-k",
      "3",
      "--model",
      paths.model,
      "--manifest",
      paths.manifest,
      ...files,
    ]);
    assert.equal(code, 0, stderr);
    const lines = stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    const classifier = await loadClassifier(paths);
    for (const [i, file] of files.entries()) {
      assert.equal(lines[i].file, file);
      const direct = await classifier.classify(await Deno.readFile(file), 3);
      assert.deepEqual(lines[i].predictions, direct.predictions);
    }
  },
});

Deno.test({
  name: "classify reports a bad file and exits 1 while still classifying the others",
  ...t,
  async fn() {
    const paths = await writeTinyModel(64, 48);
    const { code, stdout, stderr } = await runCli([
      "--model",
      paths.model,
      "--manifest",
      paths.manifest,
      `${FIXTURES}README.md`,
      `${FIXTURES}chelsea.jpg`,
    ]);
    assert.equal(code, 1);
    assert.match(stderr, /README\.md: Cannot classify/);
    assert.match(stdout, /chelsea\.jpg {2}\(tiny-user-model, wasm/);
    assert.equal(stdout.trim().split("\n").length, 5);
  },
});

Deno.test({
  name: "classify on the default synthetic model says its predictions are not meaningful",
  ...t,
  async fn() {
    const { code, stdout, stderr } = await runCli([`${FIXTURES}chelsea.jpg`]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /alexnet-synthetic/);
    assert.match(stdout, /note: Synthetic weights \(seed 1\): predictions are not meaningful/);
  },
});

Deno.test("classify without files prints usage and exits 2", async () => {
  const { code, stderr } = await runCli([]);
  assert.equal(code, 2);
  assert.match(stderr, /Usage: deno task classify/);
});
