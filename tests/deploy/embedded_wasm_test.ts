/**
 * The generated modules that carry our WebAssembly (deploy/embed_wasm.ts) hold
 * exactly the committed .wasm files, and the server's loaders use them.
 */
import assert from "node:assert/strict";
import { embedAll, EMBEDDED, generatedModule } from "../../deploy/embed_wasm.ts";
import { sha256Hex } from "../../deploy/_bytes.ts";

const ROOT = new URL("../../", import.meta.url);

for (const entry of EMBEDDED) {
  Deno.test(`${entry.module} holds the bytes of ${entry.wasm}, byte for byte`, async () => {
    const file = await Deno.readFile(new URL(entry.wasm, ROOT));
    const { WASM_BASE64, WASM_SHA256 } = await import(new URL(entry.module, ROOT).href);
    const embedded = Uint8Array.fromBase64(WASM_BASE64);
    assert.equal(embedded.length, file.length);
    assert.deepEqual(embedded, file);
    // The sha256 beside the .wasm is the build script's: the three agree.
    const recorded = (await Deno.readTextFile(new URL(`${entry.wasm}.sha256`, ROOT))).split(" ")[0];
    assert.equal(WASM_SHA256, recorded);
    assert.equal(await sha256Hex(embedded), recorded);
  });
}

Deno.test("the generated modules are what the generator writes today", async () => {
  assert.deepEqual(await embedAll(true), []);
});

Deno.test("a changed module gives a different generated text (the check can fail)", async () => {
  const file = await Deno.readFile(new URL(EMBEDDED[0].wasm, ROOT));
  const changed = file.slice();
  changed[changed.length - 1] ^= 1;
  assert.notEqual(
    await generatedModule(EMBEDDED[0], changed),
    await generatedModule(EMBEDDED[0], file),
  );
});

Deno.test("no server module reads a .wasm file of ours at run time", async () => {
  const offenders: string[] = [];
  const scan = async (dir: URL) => {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isDirectory) await scan(new URL(`${entry.name}/`, dir));
      else if (entry.name.endsWith(".ts")) {
        const text = await Deno.readTextFile(new URL(entry.name, dir));
        if (/wasm\/(decode\/)?[a-z_]+\.wasm["'`]/.test(text.replace(/^\s*(\*|\/\/).*$/gm, ""))) {
          offenders.push(new URL(entry.name, dir).pathname.slice(ROOT.pathname.length));
        }
      }
    }
  };
  await scan(new URL("src/", ROOT));
  assert.deepEqual(offenders, []);
});
