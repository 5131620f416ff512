import assert from "node:assert/strict";
import { createApp } from "../../src/api/mod.ts";
import { CONTENT_SECURITY_POLICY } from "../../src/api/_secure.ts";
import { tinyState } from "./_state.ts";

const t = { sanitizeOps: false, sanitizeResources: false };

Deno.test("every answer carries the security headers and a CSP the upload page fits", async () => {
  const app = createApp({});
  for (const path of ["/", "/healthz", "/readyz", "/nope", "/metrics"]) {
    const res = await app.request(path);
    await res.body?.cancel();
    const csp = res.headers.get("content-security-policy") ?? "";
    for (
      const directive of [
        "default-src 'self'",
        "script-src 'self'", // and 'wasm-unsafe-eval': the page runs onnxruntime-web's wasm
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "object-src 'none'",
      ]
    ) {
      assert.ok(csp.includes(directive), `${path}: ${directive} in ${csp}`);
    }
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
    assert.equal(res.headers.get("x-frame-options"), "SAMEORIGIN", path);
    assert.equal(res.headers.get("referrer-policy"), "same-origin", path);
    assert.equal(res.headers.get("x-powered-by"), null, path);
  }
  // Never JS eval or inline script; compiling WebAssembly is the one allowance.
  for (const source of CONTENT_SECURITY_POLICY.scriptSrc) {
    assert.ok(["'self'", "'wasm-unsafe-eval'"].includes(source), source);
  }
});

Deno.test("the upload page needs nothing the CSP forbids", async () => {
  // No inline script or style, no handler attributes, no other origin: CSP would block them.
  const dir = new URL("../../static/", import.meta.url);
  for await (const entry of Deno.readDir(dir)) {
    if (!/\.(html|js)$/.test(entry.name)) continue;
    const text = await Deno.readTextFile(new URL(entry.name, dir));
    if (entry.name.endsWith(".html")) {
      assert.doesNotMatch(text, /<script(?![^>]*\bsrc=)[^>]*>/i, `${entry.name}: inline script`);
      assert.doesNotMatch(text, /<style[\s>]/i, `${entry.name}: inline style`);
      assert.doesNotMatch(text, /\sstyle=|\son[a-z]+=/i, `${entry.name}: inline attribute`);
      assert.doesNotMatch(text, /(src|href)="https?:/i, `${entry.name}: another origin`);
    } else {
      assert.doesNotMatch(text, /\beval\(|new Function\(/, `${entry.name}: eval`);
      assert.doesNotMatch(text, /fetch\(\s*["'`]https?:/, `${entry.name}: another origin`);
    }
  }
});

Deno.test("CORS is off by default: no Access-Control headers for any origin", async () => {
  const app = createApp({});
  const res = await app.request("/healthz", { headers: { origin: "https://evil.example" } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("access-control-allow-origin"), null);
  const preflight = await app.request("/predict", {
    method: "OPTIONS",
    headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
  });
  assert.equal(preflight.headers.get("access-control-allow-origin"), null);
});

Deno.test("CORS allows exactly the configured origins, or any with *", async () => {
  const app = createApp({}, { corsOrigins: ["https://app.example"] });
  const ok = await app.request("/healthz", { headers: { origin: "https://app.example" } });
  assert.equal(ok.headers.get("access-control-allow-origin"), "https://app.example");
  assert.match(ok.headers.get("access-control-expose-headers") ?? "", /X-Request-Id/i);
  const other = await app.request("/healthz", { headers: { origin: "https://evil.example" } });
  assert.equal(other.headers.get("access-control-allow-origin"), null);
  const preflight = await app.request("/predict", {
    method: "OPTIONS",
    headers: { origin: "https://app.example", "access-control-request-method": "POST" },
  });
  assert.equal(preflight.status, 204);
  assert.match(preflight.headers.get("access-control-allow-methods") ?? "", /POST/);
  const any = createApp({}, { corsOrigins: ["*"] });
  const star = await any.request("/healthz", { headers: { origin: "https://x.example" } });
  assert.equal(star.headers.get("access-control-allow-origin"), "*");
});

Deno.test("a CORS preflight allows Inference-Header-Content-Length, so pages send binary tensors", async () => {
  const app = createApp({}, { corsOrigins: ["https://app.example"] });
  const preflight = await app.request("/v2/models/alexnet/infer", {
    method: "OPTIONS",
    headers: {
      origin: "https://app.example",
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type,inference-header-content-length",
    },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), "https://app.example");
  const allowed = (preflight.headers.get("access-control-allow-headers") ?? "").toLowerCase()
    .split(/\s*,\s*/);
  assert.ok(allowed.includes("inference-header-content-length"), allowed.join(","));
  assert.ok(allowed.includes("content-type"), allowed.join(","));
  // A binary answer carries the same header: the page must be able to read it.
  const answer = await app.request("/healthz", { headers: { origin: "https://app.example" } });
  assert.match(
    answer.headers.get("access-control-expose-headers") ?? "",
    /(^|,\s*)Inference-Header-Content-Length(,|$)/i,
  );
});

Deno.test("static serving answers 404 to every path outside static/", async () => {
  const app = createApp({});
  const paths = [
    "/../deno.json",
    "/..%2fdeno.json",
    "/%2e%2e/deno.json",
    "/%2e%2e%2fdeno.json",
    "/%252e%252e%252fdeno.json",
    "/..%5cdeno.json",
    "/static/../main.ts",
    "/./../main.ts",
    "//etc/passwd",
    "/%2fetc%2fpasswd",
    "/index.html%00.js",
    "/....//deno.json",
    "/.git/config",
    "/.%2e/.%2e/deno.json",
    "/src/api/app.ts",
    "/" + "a/".repeat(500) + "x",
  ];
  for (const path of paths) {
    const res = await app.request(path);
    assert.equal(res.status, 404, path);
    const body = await res.json();
    assert.equal(body.error.code, "not_found", path);
    assert.doesNotMatch(JSON.stringify(body), /\/work\/|file:/, `${path}: no server path`);
  }
});

Deno.test({
  name: "static serving skips a symlink in its folder that points outside",
  ...t,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "alexnet-edge-static-" });
    try {
      await Deno.writeTextFile(`${dir}/index.html`, "<html></html>");
      const secret = await Deno.makeTempFile({ prefix: "alexnet-edge-secret-" });
      await Deno.writeTextFile(secret, "secret");
      await Deno.symlink(secret, `${dir}/leak.txt`);
      await Deno.symlink("/etc", `${dir}/etc`);
      const app = createApp({}, { staticDir: new URL(`file://${dir}/`) });
      assert.equal((await app.request("/index.html")).status, 200);
      for (const path of ["/leak.txt", "/etc/passwd", "/etc/hostname"]) {
        const res = await app.request(path);
        assert.equal(res.status, 404, path);
        assert.doesNotMatch(await res.text(), /secret|root:/);
      }
      await Deno.remove(secret);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "the server never fetches a URL a client sends in place of an image",
  ...t,
  async fn() {
    // A loopback listener stands in for an internal service; it must see no connection.
    let connections = 0;
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepting = (async () => {
      for await (const conn of listener) {
        connections++;
        conn.close();
      }
    })();
    const target = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/secret.jpg`;
    const app = createApp(await tinyState());
    const attempts: RequestInit[] = [
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ image: target }),
      },
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ url: target }),
      },
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ image_url: target }),
      },
      { method: "POST", headers: { "content-type": "text/uri-list" }, body: target },
      { method: "POST", headers: { "content-type": "image/jpeg" }, body: target },
    ];
    for (const init of attempts) {
      const res = await app.request("/predict", init);
      assert.ok([400, 415].includes(res.status), `${init.body}: ${res.status}`);
      await res.body?.cancel();
    }
    const form = new FormData();
    form.append("image", target);
    const res = await app.request("/predict", { method: "POST", body: form });
    assert.equal(res.status, 400);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(connections, 0, "no request reached the listener");
    listener.close();
    await accepting.catch(() => {});
  },
});
