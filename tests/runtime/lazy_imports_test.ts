/**
 * What a launch does not load: a model wholly on our kernels never imports onnxruntime-web
 * (on the caller's thread, in the inference Worker, or in the kernels' helper Workers), and a
 * JPEG without EXIF is decoded without exifr or imagescript's decoders. Each check runs a
 * child process whose import map replaces those packages with a module that throws on
 * import; the same child on a model that needs onnxruntime (or on a PNG) shows the stubs bite.
 */
import assert from "node:assert/strict";
import { buildQOperatorAlexNet } from "../model/_qoperator_models.ts";

const ROOT = new URL("../../", import.meta.url);
const SMALL = { inputSize: 67, convDivisor: 8, fcWidth: 64, classes: 10, calibration: 2 };
const t = { sanitizeOps: false, sanitizeResources: false };

/** deno.json's imports with `stubbed` specifiers pointing at a module that throws. */
async function stubbedImportMap(dir: string, stubbed: string[]): Promise<string> {
  const stub = `${dir}/stub.js`;
  // The default export lets importers link; evaluating the module throws.
  const code = 'throw new Error("a stubbed package was imported");\nexport default undefined;\n';
  await Deno.writeTextFile(stub, code);
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const imports: Record<string, string> = { ...config.imports };
  for (const s of stubbed) imports[s] = `file://${stub}`;
  const map = `${dir}/import_map.json`;
  await Deno.writeTextFile(map, JSON.stringify({ imports }));
  return map;
}

const CHILD = `
import { createWasmBackend, threadsSettled } from "${new URL("src/runtime/wasm.ts", ROOT)}";
import { createWorkerBackend } from "${new URL("src/classify/worker_backend.ts", ROOT)}";
import { decodeImage } from "${new URL("src/image/mod.ts", ROOT)}";
const [what, path, int8] = Deno.args;
if (what === "image") {
  const image = await decodeImage(await Deno.readFile(path));
  console.log("decoded", image.width, image.height);
} else {
  const io = { inputName: "data_0", outputName: "softmaxout_1", int8 };
  const x = new Float32Array(3 * 67 * 67).fill(0.5);
  const here = await createWasmBackend(await Deno.readFile(path), { ...io, threads: 2 });
  await here.run(x, [1, 3, 67, 67]);
  await threadsSettled();
  await here.run(x, [1, 3, 67, 67]);
  await here.release();
  const worker = await createWorkerBackend(await Deno.readFile(path), { ...io, threadsPerWorker: 2 });
  await worker.run(x, [1, 3, 67, 67]);
  await worker.release();
  console.log("ran");
}
`;

/** Runs the child with the stubbed import map; its exit status and output. */
async function runChild(dir: string, map: string, args: string[]) {
  const script = `${dir}/child.ts`;
  await Deno.writeTextFile(script, CHILD);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--node-modules-dir=auto", `--import-map=${map}`, script, ...args],
    cwd: ROOT,
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { success: out.success, text };
}

Deno.test({
  name:
    "a model wholly on our kernels runs here and in the Workers without importing onnxruntime-web",
  ...t,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const model = `${dir}/model.onnx`;
      await Deno.writeFile(model, (await buildQOperatorAlexNet(SMALL)).bytes);
      const map = await stubbedImportMap(dir, ["onnxruntime-web"]);
      const ours = await runChild(dir, map, ["model", model, "custom"]);
      assert.ok(ours.success, ours.text);
      assert.match(ours.text, /ran/);
      // The same model on onnxruntime's int8 kernels needs the package: the stub bites.
      const theirs = await runChild(dir, map, ["model", model, "ort"]);
      assert.ok(!theirs.success, theirs.text);
      assert.match(theirs.text, /a stubbed package was imported/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a JPEG without EXIF decodes without loading exifr or imagescript's decoders",
  ...t,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const map = await stubbedImportMap(dir, [
        "exifr",
        "imagescript/wasm/node/gif.js",
        "imagescript/wasm/node/jpeg.js",
        "imagescript/wasm/node/png.js",
      ]);
      const fixture = (name: string) => new URL(`tests/fixtures/${name}`, ROOT).pathname;
      const jpeg = await runChild(dir, map, ["image", fixture("chelsea.jpg")]);
      assert.ok(jpeg.success, jpeg.text);
      assert.match(jpeg.text, /decoded 448 288/);
      // A JPEG with EXIF asks exifr: the stub fails, which counts as upright, so the image
      // stays as stored (288x448; exifr turns it to 448x288).
      const exif = await runChild(dir, map, ["image", fixture("chelsea_exif6.jpg")]);
      assert.ok(exif.success, exif.text);
      assert.match(exif.text, /decoded 288 448/);
      // A PNG needs imagescript's decoder.
      const png = await runChild(dir, map, ["image", fixture("coffee.png")]);
      assert.ok(!png.success, png.text);
      assert.match(png.text, /a stubbed package was imported/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
