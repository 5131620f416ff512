/**
 * Models from disk as an attacker with a file in models/ would try them: bytes
 * that keep the pinned size, symbolic links, manifests that point out of their
 * folder; and 503 bodies that must not tell a client where the files are.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { pathToFileURL } from "node:url";
import { Hono } from "hono";
import { createApp, createLogger } from "../../src/api/mod.ts";
import { onError } from "../../src/api/errors.ts";
import { browserRoutes } from "../../src/api/browser.ts";
import { withoutPaths } from "../../src/api/health.ts";
import { findModelFiles } from "../../src/api/_model_files.ts";
import type { Classifier } from "../../src/classify/mod.ts";
import { parseConfig } from "../../src/config.ts";
import { ClassifierError } from "../../src/errors.ts";
import { writeZooManifest } from "../../src/model/fetch.ts";
import { chooseStartupModel } from "../../src/model/fetch_startup.ts";
import { parseManifest } from "../../src/model/manifest.ts";
import { loadModel, syntheticManifest } from "../../src/model/store.ts";
import { findZooEntry } from "../../src/model/zoo.ts";
import {
  cachedSha256,
  type Sha256,
  SHA256_CACHE_NAME,
  sha256Of,
  stampOf,
} from "../../src/model/sha256_cache.ts";
import { LOCAL_PROFILE, type Platform } from "../../src/platform/mod.ts";
import { createServer } from "../../src/server.ts";
import { writeTinyModel } from "../_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const LOCAL: Platform = { profile: LOCAL_PROFILE, reason: "test", workers: true };

const dirs: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const dir of dirs) Deno.removeSync(dir, { recursive: true });
});

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** The tiny model with a manifest pinning its sha256 (as a pretrained manifest does). */
async function pinnedTiny() {
  const tiny = await writeTinyModel();
  dirs.push(tiny.dir);
  const pin = sha256(await Deno.readFile(tiny.model));
  const manifest = JSON.parse(await Deno.readTextFile(tiny.manifest));
  manifest.provenance = { kind: "pretrained", source: "tests", sha256: pin };
  await Deno.writeTextFile(tiny.manifest, JSON.stringify(manifest));
  return { ...tiny, pin, manifestUrl: pathToFileURL(tiny.manifest) };
}

/** Overwrites one byte in place: the size stays, the bytes do not. */
async function flipByte(path: string, at = 100): Promise<void> {
  using file = await Deno.open(path, { read: true, write: true });
  const one = new Uint8Array(1);
  await file.seek(at, Deno.SeekMode.Start);
  await file.read(one);
  await file.seek(at, Deno.SeekMode.Start);
  await file.write(new Uint8Array([one[0] ^ 0xff]));
}

/** A hash that counts its calls. */
function counting(): { calls: number; sha256: Sha256 } {
  const counter = {
    calls: 0,
    sha256: (data: Uint8Array | URL) => {
      counter.calls++;
      return sha256Of(data);
    },
  };
  return counter;
}

function refusedWith(pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ClassifierError, String(e));
    assert.equal(e.code, "model_invalid");
    assert.match(e.message, pattern);
    return true;
  };
}

async function tempDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "alexnet-edge-modelfiles-" });
  dirs.push(dir);
  return dir;
}

/** A server on `args`, quiet, loaded (or failed) before it returns. */
async function server(args: string[]) {
  const lines: string[] = [];
  const logger = createLogger({ level: "info", write: (line) => lines.push(line) });
  const config = parseConfig(["--offline", "--backend", "wasm", ...args]);
  const s = createServer(config, { logger, platform: LOCAL, waitForModel: false });
  await s.ready;
  return { server: s, log: () => lines.join("\n") };
}

/** GET, or POST with an image for /predict. */
const get = (path: string) =>
  new Request(
    `http://local${path}`,
    path === "/predict"
      ? {
        method: "POST",
        body: new Uint8Array([0xff, 0xd8]),
        headers: { "content-type": "image/jpeg" },
      }
      : {},
  );

Deno.test({
  name: "a pinned model with the right size but other bytes is refused and its pin never reported",
  ...t,
  async fn() {
    const tiny = await pinnedTiny();
    // With the pinned bytes, /v1/models reports the pin: the check below can fail.
    const good = await server(["--model", tiny.model]);
    const models = await (await good.server.fetch(get("/v1/models"))).json();
    assert.equal(models.models[0].weights.sha256, tiny.pin);
    await good.server.state.classifier?.release();

    await flipByte(tiny.model);
    const bad = await server(["--model", tiny.model]);
    assert.match(bad.server.state.loadError ?? "", /does not match the sha256 its manifest pins/);
    assert.match(bad.log(), /Cannot load the model: .*does not match the sha256/);
    for (const path of ["/v1/models", "/readyz", "/predict"]) {
      const res = await bad.server.fetch(get(path));
      const text = await res.text();
      assert.equal(res.status, 503, `${path}: ${text}`);
      assert.ok(!text.includes(tiny.pin), `${path} reports the pin: ${text}`);
    }
  },
});

Deno.test({
  name: "MODEL_URL bytes checked against another sha256 than their manifest pins are refused",
  ...t,
  async fn() {
    const tiny = await pinnedTiny();
    await flipByte(tiny.model);
    const bytes = await Deno.readFile(tiny.model);
    const remote = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response(bytes),
    );
    try {
      const config = parseConfig([
        "--model-url",
        `http://127.0.0.1:${remote.addr.port}/tiny.onnx`,
        "--model-sha256",
        sha256(bytes),
        "--manifest",
        tiny.manifest,
      ]);
      const s = createServer(config, {
        logger: createLogger({ level: "error", write: () => {} }),
        platform: { ...LOCAL, workers: false },
        waitForModel: false,
      });
      await s.ready;
      assert.match(s.state.loadError ?? "", /its manifest pins sha256 [0-9a-f]{12}…, MODEL_SHA256/);
      const res = await s.fetch(get("/v1/models"));
      assert.equal(res.status, 503);
      assert.ok(!(await res.text()).includes(tiny.pin));
    } finally {
      await remote.shutdown();
    }
  },
});

Deno.test("loadModel hashes a pinned model once: a restart reads the sha256 cache", async () => {
  const tiny = await pinnedTiny();
  const first = counting();
  await loadModel(tiny.manifestUrl, undefined, { sha256: first.sha256 });
  assert.equal(first.calls, 1);
  const modelUrl = pathToFileURL(tiny.model);
  const stamp = stampOf(await Deno.lstat(modelUrl));
  assert.equal(await cachedSha256(modelUrl, stamp), tiny.pin, "the first load left its entry");
  assert.ok((await Deno.lstat(`${tiny.dir}/${SHA256_CACHE_NAME}`)).isFile);

  const second = counting();
  const model = await loadModel(tiny.manifestUrl, undefined, { sha256: second.sha256 });
  assert.equal(second.calls, 0, "hashed again despite the cache");
  assert.equal(
    model.manifest.provenance.kind === "pretrained" && model.manifest.provenance.sha256,
    tiny.pin,
  );
});

Deno.test("a model changed in place is hashed again, even with its old mtime put back", async () => {
  const tiny = await pinnedTiny();
  await loadModel(tiny.manifestUrl);
  const before = await Deno.lstat(tiny.model);
  // Deno reports ctime in whole seconds: change the file in a later second than it was written.
  const written = before.ctime!.getTime();
  while (Date.now() < written + 1050) await new Promise((r) => setTimeout(r, 100));
  await flipByte(tiny.model);
  await Deno.utime(tiny.model, before.atime!, before.mtime!);
  const after = await Deno.lstat(tiny.model);
  assert.equal(after.mtime?.getTime(), before.mtime?.getTime());
  assert.equal(after.size, before.size);
  const hash = counting();
  await assert.rejects(
    loadModel(tiny.manifestUrl, undefined, { sha256: hash.sha256 }),
    refusedWith(/does not match the sha256 its manifest pins \(expected [0-9a-f]{12}…/),
  );
  assert.equal(hash.calls, 1);
});

Deno.test("start-up skips a zoo file with the pinned size but other bytes, as if missing", async () => {
  const dir = pathToFileURL(`${await tempDir()}/`);
  const entry = findZooEntry("int8")!;
  {
    using file = await Deno.open(new URL(entry.file, dir), { write: true, create: true });
    await file.truncate(entry.bytes!);
  }
  const lines: string[] = [];
  const options = {
    dir,
    builtin: false,
    progress: false as const,
    log: (l: string) => lines.push(l),
  };
  const choice = await chooseStartupModel({ ...options, offline: true });
  assert.equal(choice.model, undefined, "fell back to the synthetic AlexNet");
  assert.match(
    lines.join("\n"),
    /Skipping bvlcalexnet-12-int8\.onnx: not the pinned file \(its sha256 differs\); run `deno task model:fetch bvlcalexnet-12-int8`/,
  );
  await assert.rejects(
    chooseStartupModel({ ...options, offline: true, model: "int8" }),
    refusedWith(/is not the pinned file \(its sha256 differs\) and --offline is set/),
  );
});

Deno.test("a symbolic link in models/ is refused: start-up skips it, loadModel will not read it", async () => {
  const dir = await tempDir();
  const dirUrl = pathToFileURL(`${dir}/`);
  const outside = await tempDir();
  await Deno.writeTextFile(`${outside}/target.onnx`, "x");
  await Deno.symlink(`${outside}/target.onnx`, `${dir}/alexnet-torchvision.onnx`);
  const lines: string[] = [];
  const choice = await chooseStartupModel({
    dir: dirUrl,
    offline: true,
    log: (l) => lines.push(l),
  });
  assert.equal(choice.model, undefined);
  assert.match(lines.join("\n"), /Skipping alexnet-torchvision\.onnx: a symbolic link/);
  // The labels written beside a zoo manifest replace a link; what it pointed to is untouched.
  await Deno.writeTextFile(`${outside}/labels.json`, "mine");
  await Deno.symlink(`${outside}/labels.json`, `${dir}/imagenet_labels.json`);
  await writeZooManifest(findZooEntry("torchvision")!, dirUrl);
  assert.equal(await Deno.readTextFile(`${outside}/labels.json`), "mine");
  assert.ok((await Deno.lstat(`${dir}/imagenet_labels.json`)).isFile);

  const tiny = await pinnedTiny();
  await Deno.rename(tiny.model, `${tiny.dir}/real.onnx`);
  await Deno.symlink(`${tiny.dir}/real.onnx`, tiny.model);
  await assert.rejects(
    loadModel(tiny.manifestUrl),
    refusedWith(/tiny\.onnx: it is a symbolic link/),
  );
  // A linked folder is a way out as well.
  const linked = await pinnedTiny();
  await Deno.mkdir(`${outside}/sub`);
  await Deno.rename(linked.model, `${outside}/sub/tiny.onnx`);
  await Deno.symlink(`${outside}/sub`, `${linked.dir}/sub`);
  const manifest = JSON.parse(await Deno.readTextFile(linked.manifest));
  await Deno.writeTextFile(
    linked.manifest,
    JSON.stringify({ ...manifest, model: "sub/tiny.onnx" }),
  );
  await assert.rejects(
    loadModel(linked.manifestUrl),
    refusedWith(/resolves outside the manifest's folder/),
  );
});

Deno.test("a manifest's model and labels paths must stay inside its folder", async () => {
  for (
    const path of [
      "../secret.onnx",
      "a/../../secret.onnx",
      "%2e%2e/secret.onnx",
      ".%2E/secret.onnx",
      "/etc/passwd",
      "file:///etc/passwd",
      "C:\\models\\a.onnx",
      "..\\a.onnx",
      "",
    ]
  ) {
    for (const field of ["model", "labels"]) {
      assert.throws(
        () => parseManifest({ ...syntheticManifest(1), [field]: path }, "m.json"),
        refusedWith(new RegExp(`"${field}" must be a path inside the manifest's folder`)),
        `${field}: ${path}`,
      );
    }
  }
  for (const path of ["a.onnx", "sub/a.onnx", "./a.onnx", "a..b.onnx"]) {
    assert.equal(parseManifest({ ...syntheticManifest(1), model: path }).model, path);
  }
  // On disk: loadModel refuses the manifest before reading anything it names.
  const tiny = await pinnedTiny();
  const manifest = JSON.parse(await Deno.readTextFile(tiny.manifest));
  await Deno.writeTextFile(tiny.manifest, JSON.stringify({ ...manifest, model: "../tiny.onnx" }));
  await assert.rejects(loadModel(tiny.manifestUrl), refusedWith(/"model" must be a path inside/));
});

Deno.test("/v1/models/current.onnx serves only a regular, confined file that matches its pin", async () => {
  const tiny = await pinnedTiny();
  const dir = pathToFileURL(`${tiny.dir}/`);
  const name = "tiny-user-model";
  const state = { classifier: { info: { name } } as unknown as Classifier };
  const app = new Hono().onError(onError).route(
    "/",
    browserRoutes(state, { locate: (n) => findModelFiles(n, dir) }),
  );
  const ok = await app.request("/v1/models/current.onnx");
  assert.equal(ok.status, 200);
  assert.deepEqual(new Uint8Array(await ok.arrayBuffer()), await Deno.readFile(tiny.model));

  const manifest = JSON.parse(await Deno.readTextFile(tiny.manifest));
  const outside = await tempDir();
  await Deno.writeTextFile(`${outside}/secret.onnx`, "secret");
  const cases: [string, () => Promise<void>][] = [
    [
      "a path out of models/",
      () =>
        Deno.writeTextFile(tiny.manifest, JSON.stringify({ ...manifest, model: "../secret.onnx" })),
    ],
    ["an absolute path", () =>
      Deno.writeTextFile(
        tiny.manifest,
        JSON.stringify({ ...manifest, model: `${outside}/secret.onnx` }),
      )],
    ["a symbolic link", async () => {
      await Deno.writeTextFile(tiny.manifest, JSON.stringify({ ...manifest, model: "link.onnx" }));
      await Deno.symlink(`${outside}/secret.onnx`, `${tiny.dir}/link.onnx`);
    }],
    ["bytes that are not the pinned ones", async () => {
      await Deno.writeTextFile(tiny.manifest, JSON.stringify(manifest));
      await flipByte(tiny.model);
    }],
  ];
  for (const [what, make] of cases) {
    await make();
    assert.equal(await findModelFiles(name, dir), undefined, what);
    const res = await app.request("/v1/models/current.onnx");
    const text = await res.text();
    assert.equal(res.status, 404, `${what}: ${text}`);
    assert.ok(!text.includes("secret") && !text.includes(outside), `${what}: ${text}`);
  }
});

Deno.test({
  name: "503 bodies say what to do and never name the folder a failed load was read from",
  ...t,
  async fn() {
    const dir = await tempDir();
    const { server: s, log } = await server(["--model", `${dir}/missing.onnx`]);
    assert.ok(s.state.loadError?.includes(dir), "the detailed error keeps its path");
    assert.ok(log().includes(dir), "the log says where");
    for (const path of ["/readyz", "/v1/models", "/predict", "/v2/health/ready"]) {
      const res = await s.fetch(get(path));
      const text = await res.text();
      assert.equal(res.status, 503, `${path}: ${text}`);
      assert.ok(!text.includes(dir) && !text.includes("/tmp"), `${path}: ${text}`);
      const message = JSON.parse(text).error?.message ?? JSON.parse(text).message ?? text;
      assert.match(message, /server log says why.*restart the server/, `${path}: ${text}`);
    }
    assert.equal((await s.fetch(get("/healthz"))).status, 200);
  },
});

Deno.test("readyz drops paths and stacks from a stopped backend's reason", async () => {
  const failure = "Cannot classify: the inference worker stopped (Cannot open " +
    "/srv/models/a.onnx)\n    at run (file:///srv/app/src/runtime/x.ts:1:1); see /readyz";
  const classifier = { failure, info: { name: "x" } } as unknown as Classifier;
  const res = await createApp({ classifier }).request("/readyz");
  assert.equal(res.status, 503);
  const { error } = await res.json();
  assert.equal(error.message, "Cannot classify: the inference worker stopped (Cannot open …)");
  assert.equal(withoutPaths("restart, then poll /readyz"), "restart, then poll /readyz");
  assert.equal(withoutPaths("C:\\models\\a.onnx is gone"), "… is gone");
});
