import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  download,
  type DownloadProgress,
  ModelFetchError,
  sha256File,
} from "../../src/model/download.ts";
import {
  loopbackFetch,
  pinOf,
  randomBytes,
  refusedUrl,
  serveFile,
  type TestServer,
} from "./_fetch_servers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };

// 3 MB: enough for the body to arrive in many chunks.
const BYTES = randomBytes(3 * 1024 * 1024 + 123, 11);
const PIN = pinOf(BYTES);
const HALF = 1_500_000;

const dirs: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const dir of dirs) Deno.removeSync(dir, { recursive: true });
});

async function tempDest(): Promise<URL> {
  const dir = await Deno.makeTempDir({ prefix: "alexnet-edge-fetch-" });
  dirs.push(dir);
  return new URL(`file://${dir}/model.onnx`);
}

const exists = (url: URL) => Deno.stat(url).then(() => true, () => false);
const partialOf = (dest: URL) => new URL(`${dest.href}.partial`);

async function withServers(
  servers: TestServer[],
  fn: (...s: TestServer[]) => Promise<void>,
): Promise<void> {
  try {
    await fn(...servers);
  } finally {
    for (const s of servers) await s.close();
  }
}

Deno.test({
  name: "download streams a file from a Range-capable mirror, checks it and moves it into place",
  ...t,
  async fn() {
    await withServers([serveFile(BYTES)], async (server) => {
      const dest = await tempDest();
      const events: DownloadProgress[] = [];
      const result = await download([server.url], dest, {
        pin: PIN,
        fetch: loopbackFetch,
        onProgress: (p) => events.push({ ...p }),
      });
      assert.equal(result.source, server.url);
      assert.equal(result.resumedFrom, 0);
      assert.deepEqual(result.failures, []);
      assert.deepEqual(await Deno.readFile(dest), BYTES);
      assert.equal(await exists(partialOf(dest)), false);
      assert.equal(server.requests[0].range, null);
      // Progress: from 0, increasing, ending at the total.
      assert.equal(events[0].received, 0);
      assert.ok(events.length > 3);
      for (let i = 1; i < events.length; i++) {
        assert.ok(events[i].received > events[i - 1].received);
      }
      assert.equal(events.at(-1)!.received, PIN.bytes);
      assert.ok(events.every((e) => e.total === PIN.bytes));
    });
  },
});

Deno.test({
  name: "download resumes with a Range request on the next mirror after a connection drops halfway",
  ...t,
  async fn() {
    const dropping = serveFile(BYTES, { dropAt: HALF, range: false });
    const good = serveFile(BYTES);
    await withServers([dropping, good], async () => {
      const dest = await tempDest();
      const result = await download([dropping.url, good.url], dest, {
        pin: PIN,
        fetch: loopbackFetch,
        retries: 1,
      });
      assert.deepEqual(await Deno.readFile(dest), BYTES);
      assert.equal(result.source, good.url);
      assert.equal(result.resumedFrom, HALF);
      // The dropping mirror was tried twice (one retry; it ignores Range so it restarted at 0).
      assert.equal(dropping.requests.length, 2);
      assert.equal(dropping.requests[1].range, `bytes=${HALF}-`);
      assert.equal(good.requests.length, 1);
      assert.equal(good.requests[0].range, `bytes=${HALF}-`);
      assert.equal(result.failures.length, 1);
      assert.match(result.failures[0].reason, /connection dropped after 1\.4 MB of 3\.0 MB/);
    });
  },
});

Deno.test({
  name: "download resumes on the same mirror when it drops once and supports Range",
  ...t,
  async fn() {
    await withServers([serveFile(BYTES, { dropAt: HALF, dropTimes: 1 })], async (server) => {
      const dest = await tempDest();
      const result = await download([server.url], dest, { pin: PIN, fetch: loopbackFetch });
      assert.deepEqual(await Deno.readFile(dest), BYTES);
      assert.deepEqual(server.requests.map((r) => r.range), [null, `bytes=${HALF}-`]);
      assert.equal(result.resumedFrom, HALF);
      assert.deepEqual(result.failures, []);
    });
  },
});

Deno.test({
  name: "download resumes a partial file left by an earlier run",
  ...t,
  async fn() {
    await withServers([serveFile(BYTES)], async (server) => {
      const dest = await tempDest();
      await Deno.writeFile(partialOf(dest), BYTES.subarray(0, 1_000_000));
      const result = await download([server.url], dest, { pin: PIN, fetch: loopbackFetch });
      assert.equal(server.requests[0].range, "bytes=1000000-");
      assert.equal(result.resumedFrom, 1_000_000);
      assert.deepEqual(await Deno.readFile(dest), BYTES);
    });
  },
});

Deno.test({
  name: "download starts over when a mirror ignores Range and answers 200",
  ...t,
  async fn() {
    await withServers([serveFile(BYTES, { range: false })], async (server) => {
      const dest = await tempDest();
      await Deno.writeFile(partialOf(dest), BYTES.subarray(0, 1_000_000));
      const result = await download([server.url], dest, { pin: PIN, fetch: loopbackFetch });
      assert.equal(server.requests[0].range, "bytes=1000000-");
      assert.equal(result.resumedFrom, 0);
      assert.deepEqual(await Deno.readFile(dest), BYTES);
    });
  },
});

Deno.test({
  name: "a complete partial file is verified and moved without a request",
  ...t,
  async fn() {
    await withServers([serveFile(BYTES)], async (server) => {
      const dest = await tempDest();
      await Deno.writeFile(partialOf(dest), BYTES);
      const result = await download([server.url], dest, { pin: PIN, fetch: loopbackFetch });
      assert.equal(server.requests.length, 0);
      assert.equal(result.source, "(partial file)");
      assert.deepEqual(await Deno.readFile(dest), BYTES);
    });
  },
});

Deno.test({
  name: "wrong bytes fail the sha256 check, are deleted, and the error says so",
  ...t,
  async fn() {
    const wrong = BYTES.slice();
    wrong[2_000_000] ^= 1;
    await withServers([serveFile(wrong)], async (server) => {
      const dest = await tempDest();
      await assert.rejects(
        download([server.url], dest, { pin: PIN, fetch: loopbackFetch }),
        (e: unknown) => {
          assert.ok(e instanceof ModelFetchError);
          assert.equal(e.kind, "mismatch");
          assert.match(e.message, /^Cannot use model\.onnx: no source served the pinned bytes/);
          assert.match(
            e.message,
            new RegExp(`1\\. ${server.url}: sha256 mismatch: got [0-9a-f]{64}`),
          );
          assert.match(e.message, new RegExp(`expected ${PIN.sha256}; the download was deleted`));
          return true;
        },
      );
      assert.equal(await exists(dest), false);
      assert.equal(await exists(partialOf(dest)), false);
    });
  },
});

Deno.test({
  name: "a mirror serving wrong bytes is skipped for the next one: the hash decides",
  ...t,
  async fn() {
    const wrong = randomBytes(PIN.bytes, 99);
    await withServers([serveFile(wrong), serveFile(BYTES)], async (bad, good) => {
      const dest = await tempDest();
      const result = await download([bad.url, good.url], dest, { pin: PIN, fetch: loopbackFetch });
      assert.deepEqual(await Deno.readFile(dest), BYTES);
      assert.equal(result.source, good.url);
      assert.equal(good.requests[0].range, null, "starts from 0 after a mismatch");
      assert.equal(result.failures[0].mismatch, true);
    });
  },
});

Deno.test({
  name: "resumed bytes that turn out wrong are thrown away and fetched once more from 0",
  ...t,
  async fn() {
    await withServers([serveFile(BYTES)], async (server) => {
      const dest = await tempDest();
      await Deno.writeFile(partialOf(dest), randomBytes(1_000_000, 5)); // a stale, foreign partial
      const result = await download([server.url], dest, { pin: PIN, fetch: loopbackFetch });
      assert.deepEqual(server.requests.map((r) => r.range), ["bytes=1000000-", null]);
      assert.equal(result.resumedFrom, 0);
      assert.deepEqual(await Deno.readFile(dest), BYTES);
    });
  },
});

Deno.test({
  name: "a 416 answer to a resume drops the partial file and starts over",
  ...t,
  async fn() {
    await withServers([serveFile(BYTES.subarray(0, 1000))], async (server) => {
      const dest = await tempDest();
      await Deno.writeFile(partialOf(dest), BYTES.subarray(0, 2000));
      await assert.rejects(
        download([server.url], dest, { pin: PIN, fetch: loopbackFetch }),
        new RegExp(`${server.url}: size 1000 bytes, expected ${PIN.bytes}`),
      );
      assert.deepEqual(server.requests.map((r) => r.range), ["bytes=2000-", null]);
      assert.equal(await exists(partialOf(dest)), false);
    });
  },
});

Deno.test({
  name: "a mirror announcing another size is refused before its body is read",
  ...t,
  async fn() {
    await withServers([serveFile(BYTES.subarray(0, 1000))], async (server) => {
      const dest = await tempDest();
      await assert.rejects(
        download([server.url], dest, { pin: PIN, fetch: loopbackFetch }),
        new RegExp(`${server.url}: size 1000 bytes, expected ${PIN.bytes}`),
      );
    });
  },
});

Deno.test({
  name: "when every mirror fails the error lists each one with its status",
  ...t,
  async fn() {
    const refused = refusedUrl();
    const wrong = randomBytes(PIN.bytes, 3);
    await withServers(
      [serveFile(BYTES, { status: 404 }), serveFile(BYTES, { status: 503 }), serveFile(wrong)],
      async (missing, down, bad) => {
        const dest = await tempDest();
        await assert.rejects(
          download([missing.url, down.url, refused, bad.url], dest, {
            pin: PIN,
            fetch: loopbackFetch,
          }),
          (e: unknown) => {
            assert.ok(e instanceof ModelFetchError);
            assert.equal(e.kind, "mirrors_failed");
            const lines = e.message.split("\n");
            assert.equal(lines[0], "Cannot fetch model.onnx: every source failed:");
            assert.equal(lines[1], `  1. ${missing.url}: HTTP 404 Not Found`);
            assert.equal(lines[2], `  2. ${down.url}: HTTP 503 Service Unavailable`);
            assert.equal(lines[3], `  3. ${refused}: connection refused`);
            assert.match(lines[4], new RegExp(`^  4\\. ${bad.url}: sha256 mismatch`));
            assert.match(lines[5], /--url URL .* --file PATH/);
            assert.deepEqual(e.failures.map((f) => f.source), [
              missing.url,
              down.url,
              refused,
              bad.url,
            ]);
            return true;
          },
        );
        assert.equal(await exists(dest), false);
      },
    );
  },
});

Deno.test({
  name: "with no network (every connection refused) the error says so",
  ...t,
  async fn() {
    const urls = [refusedUrl(), refusedUrl()];
    const dest = await tempDest();
    await assert.rejects(download(urls, dest, { pin: PIN, fetch: loopbackFetch }), (e: unknown) => {
      assert.ok(e instanceof ModelFetchError);
      assert.equal(e.kind, "offline");
      assert.match(
        e.message,
        /^Cannot fetch model\.onnx: no network \(no source could be reached\):/,
      );
      assert.match(e.message, new RegExp(`1\\. ${urls[0]}: connection refused`));
      assert.match(e.message, new RegExp(`2\\. ${urls[1]}: connection refused`));
      return true;
    });
  },
});

Deno.test({
  name: "a mirror that never answers is given up after the headers timeout",
  ...t,
  async fn() {
    await withServers([serveFile(BYTES, { hang: true }), serveFile(BYTES)], async (hang, good) => {
      const dest = await tempDest();
      const started = performance.now();
      const result = await download([hang.url, good.url], dest, {
        pin: PIN,
        fetch: loopbackFetch,
        headersTimeoutMs: 200,
      });
      assert.ok(performance.now() - started < 5000);
      assert.equal(result.failures[0].reason, "no answer within 0.2 s");
      assert.equal(result.failures[0].unreachable, true);
      assert.deepEqual(await Deno.readFile(dest), BYTES);
    });
  },
});

Deno.test({
  name: "a mirror that stalls mid-body is given up after the idle timeout and resumed elsewhere",
  ...t,
  async fn() {
    await withServers(
      [serveFile(BYTES, { stallAt: HALF }), serveFile(BYTES)],
      async (stall, good) => {
        const dest = await tempDest();
        const result = await download([stall.url, good.url], dest, {
          pin: PIN,
          fetch: loopbackFetch,
          idleTimeoutMs: 300,
          retries: 0,
        });
        assert.match(result.failures[0].reason, /stalled \(no data for 0\.3 s\) after 1\.4 MB/);
        assert.equal(good.requests[0].range, `bytes=${HALF}-`);
        assert.deepEqual(await Deno.readFile(dest), BYTES);
      },
    );
  },
});

Deno.test({
  name: "a local file source is checked like a download",
  ...t,
  async fn() {
    const dest = await tempDest();
    const local = `${new URL(".", dest).pathname}local.onnx`;
    await Deno.writeFile(local, BYTES);
    await download([`file://${local}`], dest, { pin: PIN });
    assert.deepEqual(await Deno.readFile(dest), BYTES);

    const other = await tempDest();
    await Deno.writeFile(local, BYTES.subarray(1));
    await assert.rejects(
      download([`file://${local}`], other, { pin: PIN }),
      new RegExp(`file://${local}: size ${PIN.bytes - 1} bytes, expected ${PIN.bytes}`),
    );
  },
});

Deno.test({
  name: "a full disk stops the download with a clear message and keeps the partial file",
  ignore: Deno.build.os !== "linux",
  ...t,
  async fn() {
    await withServers([serveFile(BYTES)], async (server) => {
      const dest = await tempDest();
      // Writes to /dev/full fail with ENOSPC, as on a full disk.
      await Deno.symlink("/dev/full", partialOf(dest));
      await assert.rejects(
        download([server.url], dest, { pin: PIN, fetch: loopbackFetch }),
        (e: unknown) => {
          assert.ok(e instanceof ModelFetchError);
          assert.equal(e.kind, "disk_full");
          assert.match(
            e.message,
            /^Cannot write .*model\.onnx\.partial: the disk is full after 0 B of 3\.0 MB/,
          );
          assert.match(e.message, /run the same command again to resume/);
          return true;
        },
      );
      assert.equal(await exists(dest), false);
      // The partial file (here the link to /dev/full) is left in place for the resume.
      assert.equal(await Deno.readLink(partialOf(dest)), "/dev/full");
    });
  },
});

Deno.test({
  name: "a cancelled download keeps its partial file",
  ...t,
  async fn() {
    await withServers([serveFile(BYTES, { stallAt: HALF })], async (server) => {
      const dest = await tempDest();
      const abort = new AbortController();
      await assert.rejects(
        download([server.url], dest, {
          pin: PIN,
          fetch: loopbackFetch,
          signal: abort.signal,
          onProgress: (p) => {
            if (p.received >= HALF) abort.abort(new Error("stop"));
          },
        }),
        /stop/,
      );
      assert.equal((await Deno.stat(partialOf(dest))).size, HALF);
    });
  },
});

Deno.test("sha256File hashes like crypto.subtle", async () => {
  const path = (await tempDest()).pathname;
  for (const length of [0, 1, 55, 56, 63, 64, 65, 4 * 1024 * 1024 + 7]) {
    const bytes = randomBytes(length, length + 1);
    await Deno.writeFile(path, bytes);
    const expected = Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    assert.equal(await sha256File(new URL(`file://${path}`)), expected, `length ${length}`);
  }
});

Deno.test("node:crypto's incremental sha256 matches crypto.subtle for random chunkings", async () => {
  let seed = 1;
  const random = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  for (const length of [0, 55, 56, 63, 64, 65, 127, 128, 129, 1000, 200_000]) {
    const bytes = randomBytes(length, length + 7);
    const hash = createHash("sha256");
    for (let i = 0; i < length;) {
      const n = Math.min(length - i, 1 + Math.floor(random() * 100));
      hash.update(bytes.subarray(i, i + n));
      i += n;
    }
    const expected = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    assert.deepEqual(new Uint8Array(hash.digest()), expected, `length ${length}`);
  }
});
