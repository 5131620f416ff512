import assert from "node:assert/strict";
import { writeTinyModel } from "../_helpers.ts";
import { randomBytes, serveFile } from "../model/_fetch_servers.ts";
import { logEntries, startServer, waitForLog } from "./_server.ts";

const t = { sanitizeOps: false, sanitizeResources: false };

async function readAll(conn: Deno.Conn): Promise<string> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(16 * 1024);
  for (;;) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
    const text = new TextDecoder().decode(chunks.reduce((a, b) => new Uint8Array([...a, ...b])));
    // One response: headers and a body of Content-Length bytes.
    const m = /content-length: (\d+)\r\n/i.exec(text);
    const end = text.indexOf("\r\n\r\n");
    if (m && end >= 0 && new TextEncoder().encode(text.slice(end + 4)).length >= Number(m[1])) {
      return text;
    }
  }
  return new TextDecoder().decode(
    chunks.reduce((a, b) => new Uint8Array([...a, ...b]), new Uint8Array()),
  );
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test({
    name: `${signal} turns new requests away, lets the upload in flight finish, then exits 0`,
    ...t,
    async fn() {
      const tiny = await writeTinyModel(64, 48);
      const server = await startServer({
        args: [
          ...["--model", tiny.model, "--threads", "1", "--max-readers", "1"],
          // The upload pauses while the test signals the server: no idle cut-off meanwhile.
          ...["--body-idle-timeout", "60s", "--body-read-timeout", "60s"],
        ],
      });
      try {
        const image = await Deno.readFile(new URL("../fixtures/chelsea.jpg", import.meta.url));
        const { port } = new URL(server.url);
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
        const head = `POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n` +
          `Content-Length: ${image.length}\r\nConnection: close\r\n\r\n`;
        await conn.write(new TextEncoder().encode(head));
        await conn.write(image.subarray(0, 1000)); // the handler now waits for the rest
        // With one body reader, a second upload is turned away only once the first one's body
        // is being read: then it is in flight in the server.
        for (let i = 0;; i++) {
          const probe = await fetch(`${server.url}/predict`, { method: "POST", body: image });
          await probe.body?.cancel();
          if (probe.status === 503) break;
          assert.ok(i < 200, "the first upload never reached the server");
          await new Promise((r) => setTimeout(r, 25));
        }

        Deno.kill(server.pid, signal);
        const received = logEntries(
          await waitForLog(server, (l) => l.some((x) => x.includes(`"Received ${signal}`))),
        ).find((e) => String(e.msg).startsWith(`Received ${signal}`))!;
        assert.equal(received.in_flight, 1, "the upload was in flight when the signal came");
        const late = await fetch(`${server.url}/predict`, { method: "POST", body: image });
        assert.equal(late.status, 503, "new work is turned away while draining");
        assert.match(late.headers.get("connection") ?? "", /close/);
        assert.equal((await late.json()).error.code, "not_ready");
        assert.ok(server.alive(), "still running while a request is in flight");

        await conn.write(image.subarray(1000));
        const response = await readAll(conn);
        conn.close();
        assert.match(
          response,
          /^HTTP\/1\.1 200 /,
          `${response.slice(0, 300)}\n${server.lines().join("\n")}`,
        );
        assert.match(response, /"predictions"/);
        assert.equal(await server.stop(signal), 0, server.lines().join("\n"));
        const after = await fetch(`${server.url}/healthz`).then(() => "answered", () => "refused");
        assert.equal(after, "refused", "the listener is closed");
      } finally {
        if (server.alive()) await server.stop("SIGKILL");
        await Deno.remove(tiny.dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "a drain that cannot finish in time gives up, logs it and exits 1",
  ...t,
  async fn() {
    // A mirror that sends half the model and stalls: on an edge profile the model keeps
    // loading and a /predict waits for it, outside any request deadline, so it is still in
    // flight when the drain's time (--request-timeout 1 s + 5 s) is up.
    const stalled = serveFile(randomBytes(200_000, 3), { stallAt: 100_000 });
    const server = await startServer({
      args: ["--model-url", stalled.url, "--request-timeout", "1s"],
      env: { EDGE_PROFILE: "deno-deploy", MODEL_SHA256: "0".repeat(64) },
      waitFor: "healthz",
    });
    try {
      const image = await Deno.readFile(new URL("../fixtures/chelsea.jpg", import.meta.url));
      const waiting = fetch(`${server.url}/predict`, { method: "POST", body: image })
        .then((r) => r.body?.cancel(), () => {});
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 200);
      await health.body?.cancel();
      // Bounded: before main.ts stopped awaiting Deno.serve's shutdown here, it never exited.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const code = await Promise.race([
        server.stop("SIGTERM"),
        new Promise<string>((r) => timer = setTimeout(() => r("still running after 60 s"), 60_000)),
      ]);
      clearTimeout(timer);
      const entries = logEntries(server.lines());
      const received = entries.find((e) => String(e.msg).startsWith("Received SIGTERM"));
      assert.equal(received?.in_flight, 1, server.lines().join("\n"));
      assert.ok(
        entries.some((e) =>
          e.level === "warn" &&
          e.msg === "Cannot finish the requests in flight in time: exiting anyway"
        ),
        server.lines().join("\n"),
      );
      assert.equal(code, 1);
      await waiting;
    } finally {
      if (server.alive()) await server.stop("SIGKILL");
      await stalled.close();
    }
  },
});
