import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fetchModelBytes } from "../../src/model/fetch_memory.ts";
import { ModelFetchError } from "../../src/model/download.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** A loopback server answering each path from `routes` (404 otherwise). */
function serve(routes: Record<string, (req: Request) => Response>) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const route = routes[new URL(req.url).pathname];
    return route ? route(req) : new Response("no", { status: 404 });
  });
  return {
    url: (path: string) => `http://127.0.0.1:${server.addr.port}${path}`,
    close: () => server.shutdown(),
  };
}

const BYTES = new Uint8Array(300_000).map((_, i) => (i * 7919) % 251);

Deno.test("fetchModelBytes returns the bytes of the first source that serves the pinned sha256", async () => {
  const s = serve({ "/m.onnx": () => new Response(BYTES) });
  try {
    const lines: string[] = [];
    const got = await fetchModelBytes([s.url("/missing.onnx"), s.url("/m.onnx")], {
      sha256: sha(BYTES),
      log: (l) => lines.push(l),
    });
    assert.deepEqual(got, BYTES);
    assert.match(lines[0], /missing\.onnx: HTTP 404/);
    assert.match(lines[1], /sha256 verified/);
  } finally {
    await s.close();
  }
});

Deno.test("fetchModelBytes refuses other bytes and says no source served the pinned ones", async () => {
  const other = BYTES.slice();
  other[1000] ^= 1;
  const s = serve({ "/m.onnx": () => new Response(other) });
  try {
    await assert.rejects(
      fetchModelBytes([s.url("/m.onnx")], { sha256: sha(BYTES) }),
      (e: Error) => {
        assert.ok(e instanceof ModelFetchError);
        assert.equal(e.kind, "mismatch");
        assert.match(e.message, /^Cannot use the model: no source served the pinned bytes/);
        assert.match(e.message, /sha256 mismatch/);
        return true;
      },
    );
  } finally {
    await s.close();
  }
});

Deno.test("fetchModelBytes refuses a pinned size the server contradicts before reading the body", async () => {
  const s = serve({ "/m.onnx": () => new Response(BYTES) });
  try {
    await assert.rejects(
      fetchModelBytes([s.url("/m.onnx")], { sha256: sha(BYTES), bytes: BYTES.length + 1 }),
      /size 300000 bytes, expected 300001/,
    );
  } finally {
    await s.close();
  }
});

Deno.test("fetchModelBytes reports no network when no source can be reached", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await assert.rejects(
    fetchModelBytes([`http://127.0.0.1:${port}/m.onnx`], { sha256: sha(BYTES) }),
    (e: Error) => e instanceof ModelFetchError && e.kind === "offline",
  );
});

Deno.test("fetchModelBytes refuses a sha256 that is not 64 hex digits", async () => {
  await assert.rejects(
    fetchModelBytes(["http://127.0.0.1:1/m.onnx"], { sha256: "abc" }),
    (e: Error) => e instanceof TypeError && /^Cannot verify the model/.test(e.message),
  );
});

/** A chunked body (no Content-Length): `parts`, then an error when `fail` is set. */
function chunked(parts: Uint8Array[], fail = false): Response {
  return new Response(
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const p of parts) controller.enqueue(p);
        if (fail) controller.error(new Error("cut"));
        else controller.close();
      },
    }),
  );
}

Deno.test("fetchModelBytes reads a chunked body of the pinned size, and refuses one byte more", async () => {
  const halves = [BYTES.subarray(0, 150_000), BYTES.subarray(150_000)];
  const s = serve({
    "/m.onnx": () => chunked(halves),
    "/longer.onnx": () => chunked([...halves, new Uint8Array(1)]),
  });
  try {
    const options = { sha256: sha(BYTES), bytes: BYTES.length };
    assert.deepEqual(await fetchModelBytes([s.url("/m.onnx")], options), BYTES);
    await assert.rejects(
      fetchModelBytes([s.url("/longer.onnx")], options),
      /more than the expected 300000 bytes/,
    );
  } finally {
    await s.close();
  }
});

Deno.test("fetchModelBytes says how much arrived when the body ends early", async () => {
  const s = serve({ "/m.onnx": () => chunked([BYTES.subarray(0, 100_000)], true) });
  try {
    await assert.rejects(
      fetchModelBytes([s.url("/m.onnx")], { sha256: sha(BYTES), bytes: BYTES.length }),
      /connection dropped after/,
    );
  } finally {
    await s.close();
  }
});
