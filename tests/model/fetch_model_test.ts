import assert from "node:assert/strict";
import { progressBar } from "../../src/model/_download_progress.ts";
import type { DownloadProgress } from "../../src/model/download.ts";
import {
  fetchModel,
  mirrorUrl,
  ModelFetchError,
  probeSources,
  sourcesFor,
  toSource,
} from "../../src/model/fetch.ts";
import { findZooEntry, type ZooEntry, zooManifest } from "../../src/model/zoo.ts";
import { loopbackFetch, pinOf, randomBytes, refusedUrl, serveFile } from "./_fetch_servers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const BYTES = randomBytes(1_234_567, 21);

const dirs: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const dir of dirs) Deno.removeSync(dir, { recursive: true });
});
async function tempDir(): Promise<URL> {
  const dir = await Deno.makeTempDir({ prefix: "alexnet-edge-fetch-model-" });
  dirs.push(dir);
  return new URL(`file://${dir}/`);
}

/** A zoo-like entry pinned to test bytes. */
function testEntry(bytes: Uint8Array, urls: string[] = []): ZooEntry {
  const base = findZooEntry("int8")!;
  return {
    ...base,
    name: "test-net",
    aliases: [],
    file: "test-net.onnx",
    ...pinOf(bytes),
    urls,
    manifest: { ...zooManifest(base), name: "test-net", model: "test-net.onnx" },
  };
}

Deno.test("mirrorUrl appends the file name or fills {file}", () => {
  assert.equal(mirrorUrl("https://m.example/zoo", "a.onnx"), "https://m.example/zoo/a.onnx");
  assert.equal(mirrorUrl("https://m.example/zoo/", "a.onnx"), "https://m.example/zoo/a.onnx");
  assert.equal(
    mirrorUrl("https://m.example/{file}?dl=1", "a.onnx"),
    "https://m.example/a.onnx?dl=1",
  );
});

Deno.test("sources: --url/--file alone, else mirrors then the built-in list", () => {
  const entry = findZooEntry("int8")!;
  assert.deepEqual(sourcesFor(entry), entry.urls);
  assert.deepEqual(sourcesFor(entry, { mirrors: ["https://m.example/zoo"] }), [
    "https://m.example/zoo/bvlcalexnet-12-int8.onnx",
    ...entry.urls,
  ]);
  assert.deepEqual(sourcesFor(entry, { mirrors: ["https://m.example"], builtin: false }), [
    "https://m.example/bvlcalexnet-12-int8.onnx",
  ]);
  assert.deepEqual(sourcesFor(entry, { urls: ["https://u.example/x.onnx", "/tmp/x.onnx"] }), [
    "https://u.example/x.onnx",
    "file:///tmp/x.onnx",
  ]);
  assert.equal(toSource("file:///a.onnx"), "file:///a.onnx");
});

Deno.test("the built-in mirrors are Hugging Face first, the retired GitHub LFS URL last", () => {
  for (const name of ["bvlcalexnet-12", "bvlcalexnet-12-int8", "bvlcalexnet-12-qdq"]) {
    const urls = findZooEntry(name)!.urls;
    assert.equal(urls[0], `https://huggingface.co/onnxmodelzoo/${name}/resolve/main/${name}.onnx`);
    assert.equal(
      urls.at(-1),
      `https://github.com/onnx/models/raw/main/validated/vision/classification/alexnet/model/${name}.onnx`,
    );
  }
  assert.deepEqual(findZooEntry("torchvision")!.urls, []);
});

Deno.test({
  name: "fetchModel downloads into the folder and writes the manifest and labels",
  ...t,
  async fn() {
    const server = serveFile(BYTES);
    try {
      const dir = await tempDir();
      const entry = testEntry(BYTES, [server.url]);
      const lines: string[] = [];
      const got = await fetchModel(entry, {
        dir,
        fetch: loopbackFetch,
        progress: false,
        log: (l) => lines.push(l),
      });
      assert.deepEqual(await Deno.readFile(got.modelUrl), BYTES);
      assert.equal(got.modelUrl.href, new URL("test-net.onnx", dir).href);
      const manifest = JSON.parse(await Deno.readTextFile(got.manifestUrl));
      assert.deepEqual(manifest, entry.manifest);
      const labels = JSON.parse(await Deno.readTextFile(new URL("imagenet_labels.json", dir)));
      assert.equal(labels.length, 1000);
      assert.match(lines.at(-1)!, /test-net\.onnx \(1\.2 MB, sha256 [0-9a-f]{12}…\) is in/);

      // A second run finds it in place, verifies it and downloads nothing.
      const again = await fetchModel(entry, { dir, fetch: loopbackFetch, progress: false });
      assert.equal(again.source, "(already present)");
      assert.equal(server.requests.length, 1);

      // A damaged copy is replaced.
      await Deno.writeFile(got.modelUrl, randomBytes(BYTES.length, 1));
      const replaced = await fetchModel(entry, { dir, fetch: loopbackFetch, progress: false });
      assert.equal(replaced.source, server.url);
      assert.deepEqual(await Deno.readFile(got.modelUrl), BYTES);
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "fetchModel reports progress to a callback",
  ...t,
  async fn() {
    const server = serveFile(BYTES);
    try {
      const events: DownloadProgress[] = [];
      await fetchModel(testEntry(BYTES), {
        dir: await tempDir(),
        urls: [server.url],
        fetch: loopbackFetch,
        progress: (p) => events.push(p),
      });
      assert.equal(events.at(-1)?.received, BYTES.length);
    } finally {
      await server.close();
    }
  },
});

Deno.test("fetchModel refuses unknown names and the torchvision preset with a clear message", async () => {
  await assert.rejects(fetchModel("resnet50"), /Cannot fetch "resnet50": unknown model; known: /);
  await assert.rejects(
    fetchModel("torchvision"),
    /Cannot fetch alexnet-torchvision: it has no pinned download; export it yourself/,
  );
});

Deno.test({
  name: "probeSources returns the mirrors that answer, in order, within the timeout",
  ...t,
  async fn() {
    const good = serveFile(BYTES);
    const missing = serveFile(BYTES, { status: 404 });
    const hang = serveFile(BYTES, { hang: true });
    const refused = refusedUrl();
    try {
      const started = performance.now();
      const { answered, failures } = await probeSources(
        [hang.url, missing.url, refused, good.url],
        { timeoutMs: 300, fetch: loopbackFetch },
      );
      assert.ok(performance.now() - started < 3000);
      assert.deepEqual(answered, [good.url]);
      assert.deepEqual(failures.map((f) => [f.source, f.reason]), [
        [hang.url, "no answer within 0.3 s"],
        [missing.url, "HTTP 404 Not Found"],
        [refused, "connection refused"],
      ]);
      assert.equal(good.requests[0].range, "bytes=0-0");
    } finally {
      for (const s of [good, missing, hang]) await s.close();
    }
  },
});

Deno.test("the progress bar writes occasional lines when stderr is not a terminal", () => {
  const out: string[] = [];
  let clock = 0;
  const bar = progressBar({
    label: "m.onnx",
    write: (s) => out.push(s),
    tty: false,
    now: () => clock,
  });
  const total = 100 * 1024 * 1024;
  for (let received = 0; received <= total; received += 1024 * 1024) {
    clock += 100;
    bar.update({ received, total, source: "https://m.example/m.onnx", resumedFrom: 0 });
  }
  bar.done();
  assert.equal(out[0], "Fetching m.onnx (100.0 MB) from https://m.example/m.onnx\n");
  assert.equal(out.length, 11, "a start line and one per 10 %");
  assert.ok(out.every((l) => l.endsWith("\n") && !l.includes("\r")));
  assert.match(
    out[1],
    /^m\.onnx \[###-{27}\] {2}10% 10\.0 MB \/ 100\.0 MB 10\.0 MB\/s 9 s left\n$/,
  );
  assert.match(out.at(-1)!, /^m\.onnx \[#{30}\] 100% 100\.0 MB \/ 100\.0 MB/);
});

Deno.test("the progress bar redraws in place on a terminal, at most ten times a second", () => {
  const out: string[] = [];
  let clock = 0;
  const bar = progressBar({
    label: "m.onnx",
    write: (s) => out.push(s),
    tty: true,
    now: () => clock,
  });
  const total = 1000;
  bar.update({ received: 500, total, source: "s", resumedFrom: 500 });
  for (let received = 510; received <= total; received += 10) {
    clock += 20;
    bar.update({ received, total, source: "s", resumedFrom: 500 });
  }
  bar.done();
  assert.equal(out[0], "Fetching m.onnx (1000 B) from s, resuming at 500 B\n");
  const redraws = out.slice(1, -1);
  assert.ok(redraws.every((l) => l.startsWith("\r") && l.endsWith("\x1b[K")));
  // 50 updates over 1 s: about 10 redraws, plus the final one at 100 %.
  assert.ok(redraws.length >= 9 && redraws.length <= 12, `${redraws.length} redraws`);
  assert.match(out.at(-1)!, /^\rm\.onnx \[#{30}\] 100% .*\n$/);
});

async function cli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "src/cli/fetch_model.ts", ...args],
    cwd: new URL("../../", import.meta.url),
    env: { MODEL_MIRRORS: "" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("model:fetch --list shows the pinned models", async () => {
  const { code, stdout } = await cli(["--list"]);
  assert.equal(code, 0);
  assert.match(
    stdout,
    /bvlcalexnet-12-int8 +int8 +top-1 54\.68% +top-5 78\.23% +58\.2 MB +sha256 d53bbedf/,
  );
  assert.match(stdout, /alexnet-torchvision +fp32 .*export it yourself/);
});

Deno.test("model:fetch refuses an unknown name with exit code 2", async () => {
  const { code, stderr } = await cli(["resnet50"]);
  assert.equal(code, 2);
  assert.match(stderr, /Cannot fetch "resnet50": unknown model/);
});

Deno.test("model:fetch --file with other bytes fails with exit code 1 and keeps nothing", async () => {
  const dir = await tempDir();
  const local = `${dir.pathname}copy.onnx`;
  await Deno.writeFile(local, randomBytes(8, 2));
  const { code, stderr } = await cli(["int8", "--file", local, "--dir", dir.pathname]);
  assert.equal(code, 1);
  assert.match(
    stderr,
    /Cannot use bvlcalexnet-12-int8\.onnx: no source served the pinned bytes[^]*copy\.onnx: size 8 bytes, expected 60984008/,
  );
  assert.equal(await Deno.stat(`${dir.pathname}bvlcalexnet-12-int8.onnx`).catch(() => null), null);
});

Deno.test("model:fetch --url to a loopback port nobody listens on reports no network", async () => {
  const dir = await tempDir();
  const url = refusedUrl("bvlcalexnet-12-int8.onnx");
  const { code, stderr } = await cli(["int8", "--url", url, "--dir", dir.pathname]);
  assert.equal(code, 1);
  assert.match(stderr, /Cannot fetch bvlcalexnet-12-int8\.onnx: no network/);
  assert.match(stderr, new RegExp(`1\\. ${url}: connection refused`));
});

Deno.test({
  name: "ModelFetchError carries its kind and failures",
  fn() {
    const e = new ModelFetchError("offline", "m", [
      { source: "s", reason: "r", unreachable: true, mismatch: false },
    ]);
    assert.equal(e.name, "ModelFetchError");
    assert.equal(e.kind, "offline");
    assert.equal(e.failures.length, 1);
  },
});
