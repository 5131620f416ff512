import assert from "node:assert/strict";
import { createApp } from "../../src/api/mod.ts";
import { loadClassifier } from "../../src/classify/load.ts";
import { parseConfig } from "../../src/config.ts";
import { ClassifierError } from "../../src/errors.ts";
import { chooseStartupModel, type StartupOptions } from "../../src/model/fetch_startup.ts";
import { findZooEntry } from "../../src/model/zoo.ts";
import { rememberSha256, stampOf } from "../../src/model/sha256_cache.ts";
import { loopbackFetch, randomBytes, refusedUrl, serveFile } from "./_fetch_servers.ts";
import { buildZooInterfaceModel, zooTestEntry } from "./_zoo_models.ts";

const t = { sanitizeOps: false, sanitizeResources: false };

const dirs: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const dir of dirs) Deno.removeSync(dir, { recursive: true });
});
async function tempDir(): Promise<URL> {
  const dir = await Deno.makeTempDir({ prefix: "alexnet-edge-startup-" });
  dirs.push(dir);
  return new URL(`file://${dir}/`);
}

/**
 * A sparse file of a zoo entry's exact size, and the sha256 cache entry a verified first start
 * would have left for it (the real files cannot be fetched here): start-up then takes it for
 * the pinned file while its size, mtime and ctime stay.
 */
async function placeholder(dir: URL, name: string, size?: number): Promise<void> {
  const entry = findZooEntry(name)!;
  const url = new URL(entry.file, dir);
  {
    using file = await Deno.open(url, { write: true, create: true });
    await file.truncate(size ?? entry.bytes ?? 1000);
  }
  if (entry.sha256) await rememberSha256(url, stampOf(await Deno.lstat(url)), entry.sha256);
}

/** Start-up options that can only reach loopback, with no built-in mirrors and no progress bar. */
function offlineSafe(dir: URL, extra: Partial<StartupOptions> = {}): StartupOptions {
  return { dir, builtin: false, fetch: loopbackFetch, progress: false, ...extra };
}

Deno.test("start-up picks the best pretrained model present: int8, then qdq, torchvision, fp32", async () => {
  const dir = await tempDir();
  let choice = await chooseStartupModel(offlineSafe(dir, { offline: true }));
  assert.equal(choice.model, undefined, "nothing there: synthetic");

  await placeholder(dir, "fp32");
  choice = await chooseStartupModel(offlineSafe(dir));
  assert.equal(choice.model, `${dir.pathname}bvlcalexnet-12.onnx`);
  assert.equal(choice.manifest, `${dir.pathname}bvlcalexnet-12.json`);
  assert.match(choice.reason, /^bvlcalexnet-12, the best pretrained model in /);
  assert.equal(choice.notice, undefined);
  // The manifest and labels were written beside it.
  const manifest = JSON.parse(await Deno.readTextFile(choice.manifest!));
  assert.equal(manifest.preprocessing.channelOrder, "BGR");
  assert.ok(await Deno.stat(new URL("imagenet_labels.json", dir)));

  await placeholder(dir, "torchvision");
  choice = await chooseStartupModel(offlineSafe(dir));
  assert.equal(choice.model, `${dir.pathname}alexnet-torchvision.onnx`);

  await placeholder(dir, "qdq");
  choice = await chooseStartupModel(offlineSafe(dir));
  assert.equal(choice.model, `${dir.pathname}bvlcalexnet-12-qdq.onnx`);

  await placeholder(dir, "int8");
  choice = await chooseStartupModel(offlineSafe(dir));
  assert.equal(choice.model, `${dir.pathname}bvlcalexnet-12-int8.onnx`);
});

Deno.test("start-up skips a zoo file of the wrong size, saying how to replace it", async () => {
  const dir = await tempDir();
  await placeholder(dir, "int8", 1000);
  await placeholder(dir, "fp32");
  const lines: string[] = [];
  const choice = await chooseStartupModel(offlineSafe(dir, { log: (l) => lines.push(l) }));
  assert.equal(choice.model, `${dir.pathname}bvlcalexnet-12.onnx`);
  assert.match(
    lines[0],
    /^Skipping bvlcalexnet-12-int8\.onnx: 1000 bytes, expected 60984008; run `deno task model:fetch bvlcalexnet-12-int8`/,
  );
});

Deno.test("--model overrides the choice: synthetic, a zoo name, a path", async () => {
  const dir = await tempDir();
  await placeholder(dir, "int8");
  await placeholder(dir, "fp32");
  let choice = await chooseStartupModel(offlineSafe(dir, { model: "synthetic" }));
  assert.equal(choice.model, undefined);
  assert.equal(choice.notice, undefined);
  choice = await chooseStartupModel(offlineSafe(dir, { model: "fp32" }));
  assert.equal(choice.model, `${dir.pathname}bvlcalexnet-12.onnx`);
  choice = await chooseStartupModel(offlineSafe(dir, { model: "./my.onnx", manifest: "my.json" }));
  assert.deepEqual([choice.model, choice.manifest], ["./my.onnx", "my.json"]);
});

Deno.test("--model naming a missing zoo model with --offline is refused with the command to run", async () => {
  const dir = await tempDir();
  await assert.rejects(
    chooseStartupModel(offlineSafe(dir, { model: "qdq", offline: true })),
    (e: unknown) => {
      assert.ok(e instanceof ClassifierError);
      assert.match(
        e.message,
        /^Cannot serve bvlcalexnet-12-qdq: .*bvlcalexnet-12-qdq\.onnx is missing and --offline is set; run `deno task model:fetch bvlcalexnet-12-qdq`/,
      );
      return true;
    },
  );
});

Deno.test("--model naming a missing zoo model that no mirror serves is refused, saying why", async () => {
  const dir = await tempDir();
  const refused = refusedUrl("");
  await assert.rejects(
    chooseStartupModel(offlineSafe(dir, { model: "fp32", mirrors: [refused] })),
    (e: unknown) => {
      assert.ok(e instanceof ClassifierError);
      assert.match(
        e.message,
        /^Cannot serve bvlcalexnet-12: it is not in .* and no mirror answered \(127\.0\.0\.1:\d+: connection refused\); run `deno task model:fetch bvlcalexnet-12`/,
      );
      return true;
    },
  );
});

Deno.test("--offline with no pretrained model starts on synthetic weights without a request", async () => {
  const dir = await tempDir();
  let requests = 0;
  const counting: typeof fetch = (input, init) => {
    requests++;
    return loopbackFetch(input, init);
  };
  const choice = await chooseStartupModel(
    offlineSafe(dir, { offline: true, fetch: counting, mirrors: ["http://127.0.0.1:9/"] }),
  );
  assert.equal(requests, 0);
  assert.equal(choice.model, undefined);
  assert.match(choice.reason, /--offline is set/);
  assert.match(choice.notice!, /run `deno task model:fetch`/);
});

Deno.test({
  name:
    "first run: when no mirror answers within the timeout, start-up goes on with synthetic weights",
  ...t,
  async fn() {
    const dir = await tempDir();
    const hang = serveFile(new Uint8Array(10), { hang: true });
    try {
      const started = performance.now();
      const choice = await chooseStartupModel(
        offlineSafe(dir, { mirrors: [hang.url.replace(/[^/]*$/, "")], fetchTimeoutMs: 300 }),
      );
      const ms = performance.now() - started;
      assert.ok(ms < 3000, `took ${ms} ms`);
      assert.equal(choice.model, undefined);
      assert.match(
        choice.reason,
        /^the synthetic AlexNet: no pretrained model in models\/ and no mirror answered \(127\.0\.0\.1:\d+: no answer within 0\.3 s\)$/,
      );
      assert.match(choice.notice!, /For real predictions run `deno task model:fetch`/);
    } finally {
      await hang.close();
    }
  },
});

Deno.test({
  name: "first run with a read-only models/ starts on synthetic weights without asking the mirrors",
  // Windows has no chmod; the child runs without --allow-write, which binds root too.
  ignore: Deno.build.os === "windows",
  async fn() {
    const dir = await tempDir();
    await Deno.chmod(dir, 0o555);
    try {
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-env",
          "--no-prompt",
          "--config",
          new URL("../../deno.json", import.meta.url).pathname,
          new URL("./_read_only_startup.ts", import.meta.url).pathname,
          dir.pathname.replace(/\/$/, ""),
          refusedUrl(""),
        ],
        env: { NO_COLOR: "1" },
      }).output();
      assert.equal(code, 0, new TextDecoder().decode(stderr));
      const out = JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").at(-1)!);
      assert.equal(out.requests, 0);
      assert.equal(out.model, null);
      assert.match(
        out.reason,
        /^the synthetic AlexNet: no pretrained model in .*, which is read-only$/,
      );
      assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing was written");
    } finally {
      await Deno.chmod(dir, 0o755);
    }
  },
});

Deno.test("first run with no network at all starts on synthetic weights at once", async () => {
  const dir = await tempDir();
  const started = performance.now();
  const choice = await chooseStartupModel(offlineSafe(dir, { mirrors: [refusedUrl("")] }));
  assert.ok(performance.now() - started < 2000);
  assert.equal(choice.model, undefined);
  assert.match(choice.reason, /connection refused/);
});

Deno.test({
  name: "first run: a mirror serving wrong bytes leaves synthetic weights and says why",
  ...t,
  async fn() {
    const dir = await tempDir();
    const bytes = buildZooInterfaceModel("qoperator");
    const entry = zooTestEntry("qoperator", bytes);
    const bad = serveFile(randomBytes(bytes.length, 4), {}, entry.file);
    try {
      const choice = await chooseStartupModel(
        offlineSafe(dir, { mirrors: [bad.url.replace(/[^/]*$/, "")], firstRun: entry }),
      );
      assert.equal(choice.model, undefined);
      assert.match(choice.reason, /sha256 mismatch/);
      assert.equal(await Deno.stat(new URL(entry.file, dir)).catch(() => null), null);
    } finally {
      await bad.close();
    }
  },
});

Deno.test({
  name: "first run: the int8 model is fetched from a mirror that answers, then served",
  ...t,
  async fn() {
    const dir = await tempDir();
    const bytes = buildZooInterfaceModel("qoperator");
    const entry = zooTestEntry("qoperator", bytes);
    const down = serveFile(bytes, { status: 503 }, entry.file);
    const mirror = serveFile(
      bytes,
      { dropAt: Math.floor(bytes.length / 2), dropTimes: 1 },
      entry.file,
    );
    const lines: string[] = [];
    try {
      const choice = await chooseStartupModel(
        offlineSafe(dir, {
          mirrors: [down.url, mirror.url].map((u) => u.replace(/[^/]*$/, "")),
          firstRun: entry,
          log: (l) => lines.push(l),
        }),
      );
      assert.equal(choice.model, `${dir.pathname}bvlcalexnet-12-int8.onnx`);
      assert.equal(choice.reason, "bvlcalexnet-12-int8, fetched on this first run");
      assert.deepEqual(await Deno.readFile(choice.model!), bytes);
      assert.ok(lines.some((l) => /^No pretrained model in .*: asking the mirrors/.test(l)));
      assert.ok(
        lines.some((l) => /^Fetching bvlcalexnet-12-int8 .* from 127\.0\.0\.1:\d+$/.test(l)),
      );
      // The probe, the dropped first try, the resume.
      assert.deepEqual(mirror.requests.map((r) => r.range), [
        "bytes=0-0",
        null,
        `bytes=${Math.floor(bytes.length / 2)}-`,
      ]);

      const classifier = await loadClassifier({ ...choice });
      const app = createApp({ classifier });
      const models = await (await app.request("/v1/models")).json();
      assert.equal(models.models[0].name, "bvlcalexnet-12-int8");
      assert.equal(models.models[0].weights.kind, "pretrained");
      assert.equal(models.models[0].weights.sha256, entry.sha256);
      const page = await app.request("/");
      assert.equal(page.status, 200);
      await classifier.release();
    } finally {
      await down.close();
      await mirror.close();
    }
  },
});

Deno.test("configuration: --offline, --fetch-timeout, MODEL_OFFLINE, MODEL_FETCH_TIMEOUT, MODEL_MIRRORS", () => {
  const env = (vars: Record<string, string>) => (k: string) => vars[k];
  let c = parseConfig([]);
  assert.equal(c.offline, false);
  assert.equal(c.fetchTimeoutMs, 5000);
  assert.deepEqual(c.mirrors, []);
  c = parseConfig(["--offline", "--fetch-timeout", "500ms"]);
  assert.equal(c.offline, true);
  assert.equal(c.fetchTimeoutMs, 500);
  c = parseConfig(
    [],
    env({
      MODEL_OFFLINE: "1",
      MODEL_FETCH_TIMEOUT: "2.5",
      MODEL_MIRRORS: "https://a.example/zoo, https://b.example/{file}",
    }),
  );
  assert.equal(c.offline, true);
  assert.equal(c.fetchTimeoutMs, 2500);
  assert.deepEqual(c.mirrors, ["https://a.example/zoo", "https://b.example/{file}"]);
  assert.equal(parseConfig([], env({ MODEL_OFFLINE: "0" })).offline, false);
  assert.throws(() => parseConfig(["--fetch-timeout", "soon"]), /Cannot use fetch-timeout=soon/);
});
