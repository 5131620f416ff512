import assert from "node:assert/strict";
import { writeTinyModel } from "./_helpers.ts";
import { logEntries, startServer, waitForLog } from "./hardening/_server.ts";

const t = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "errors nothing catches are logged, never fatal: the server keeps answering",
  ignore: Deno.build.os === "windows", // no SIGUSR1
  ...t,
  async fn() {
    const tiny = await writeTinyModel(64, 48);
    const server = await startServer({
      args: ["--model", tiny.model, "--threads", "1"],
      denoArgs: ["--preload", new URL("./hardening/_faults.ts", import.meta.url).pathname],
    });
    try {
      Deno.kill(server.pid, "SIGUSR1");
      const logged = (msg: string) => (lines: string[]) =>
        logEntries(lines).some((e) => e.level === "error" && e.msg === msg);
      await waitForLog(server, logged("Uncaught exception"));
      await waitForLog(server, logged("Unhandled rejection"));
      const errors = logEntries(server.lines()).filter((e) => e.level === "error");
      assert.match(JSON.stringify(errors), /Injected fault: thrown from a timer/);
      assert.match(JSON.stringify(errors), /Injected fault: a rejection nobody handles/);
      // Still serving, the model included.
      const res = await fetch(`${server.url}/predict`, {
        method: "POST",
        body: await Deno.readFile(new URL("./fixtures/chelsea.jpg", import.meta.url)),
        headers: { "content-type": "image/jpeg" },
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      assert.ok(server.alive());
      assert.equal(await server.stop("SIGTERM"), 0, server.lines().join("\n"));
    } finally {
      if (server.alive()) await server.stop("SIGKILL");
      await Deno.remove(tiny.dir, { recursive: true });
    }
  },
});
