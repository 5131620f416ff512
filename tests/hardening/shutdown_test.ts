import assert from "node:assert/strict";
import { writeTinyModel } from "../_helpers.ts";
import { startServer } from "./_server.ts";

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
      const server = await startServer({ args: ["--model", tiny.model, "--threads", "1"] });
      try {
        const image = await Deno.readFile(new URL("../fixtures/chelsea.jpg", import.meta.url));
        const { port } = new URL(server.url);
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
        const head = `POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n` +
          `Content-Length: ${image.length}\r\nConnection: close\r\n\r\n`;
        await conn.write(new TextEncoder().encode(head));
        await conn.write(image.subarray(0, 1000)); // the handler now waits for the rest
        await new Promise((r) => setTimeout(r, 300));

        Deno.kill(server.pid, signal);
        await new Promise((r) => setTimeout(r, 300));
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
        assert.ok(server.lines().some((l) => l.includes(`Received ${signal}`)));
        const after = await fetch(`${server.url}/healthz`).then(() => "answered", () => "refused");
        assert.equal(after, "refused", "the listener is closed");
      } finally {
        if (server.alive()) await server.stop("SIGKILL");
        await Deno.remove(tiny.dir, { recursive: true });
      }
    },
  });
}
