import assert from "node:assert/strict";
import { ClassifierError } from "../../src/errors.ts";
import { createLogger } from "../../src/log.ts";
import { QueueFullError } from "../../src/host/bounded_queue.ts";
import { startWorker, WorkerChannel } from "../../src/host/messages.ts";
import { Supervisor, type SupervisorOptions } from "../../src/host/supervisor.ts";
import type { TestMethods } from "./_test_worker.ts";

const URL_ = new URL("./_test_worker.ts", import.meta.url);

/** A supervisor of test Workers; its log lines are collected in `lines`. */
async function supervised(options: Partial<SupervisorOptions<TestMethods>> = {}) {
  const lines: Record<string, unknown>[] = [];
  let starts = 0;
  const logger = createLogger({ write: (line) => lines.push(JSON.parse(line)) });
  const host = await Supervisor.start<TestMethods>({
    what: "test Worker",
    logger,
    graceMs: 50,
    async start(channelOptions) {
      starts++;
      const channel = new WorkerChannel<TestMethods>(
        startWorker(URL_, "the test Worker"),
        channelOptions,
      );
      await channel.call("echo", "ready");
      return channel;
    },
    ...options,
  });
  return { host, lines, starts: () => starts };
}

/** Waits until the host serves again. */
async function ready(host: Supervisor<TestMethods>) {
  while (host.state.status !== "ready") await new Promise((r) => setTimeout(r, 10));
}

Deno.test("a call whose signal aborts while it waits is never run", async () => {
  const { host } = await supervised();
  const busy = host.call("work", { ms: 300 });
  const controller = new AbortController();
  const queued = host.call("work", { ms: 1 }, { signal: controller.signal });
  assert.equal(host.queueDepth, 2);
  controller.abort(new DOMException("The deadline passed", "TimeoutError"));
  await assert.rejects(queued, (e) => e instanceof DOMException && e.name === "TimeoutError");
  assert.equal(host.queueDepth, 1);
  assert.equal(await busy, 1);
  assert.equal(await host.call("count", null), 1, "the dropped call never ran");
  // An already aborted signal is refused at once.
  await assert.rejects(host.call("work", { ms: 1 }, { signal: controller.signal }));
  assert.equal(await host.call("count", null), 1);
  host.close();
});

Deno.test("a full queue refuses one more call with QueueFullError", async () => {
  const { host } = await supervised({ capacity: 2 });
  const a = host.call("work", { ms: 100 });
  const b = host.call("echo", "b");
  await assert.rejects(host.call("echo", "c"), QueueFullError);
  assert.deepEqual(await Promise.all([a, b]), [1, "b"]);
  host.close();
  await assert.rejects(host.call("echo", "late"), /closed/);
});

Deno.test({
  name: "a call past its deadline gets the timeout error and its stuck Worker is replaced",
  async fn() {
    const { host, lines, starts } = await supervised({ graceMs: 50 });
    const signal = AbortSignal.timeout(100);
    // Far longer than the test: only terminating the Worker ends it.
    const stuck = host.call("work", { ms: 60_000 }, { signal });
    await assert.rejects(stuck, (e) => e instanceof DOMException && e.name === "TimeoutError");
    // A call sent meanwhile waits for the fresh Worker.
    const next = host.call("echo", "after");
    assert.equal(await next, "after");
    await ready(host);
    assert.equal(host.replaced, 1);
    assert.equal(starts(), 2);
    assert.equal(await host.call("count", null), 0, "a fresh Worker");
    const warn = lines.find((l) => l.level === "warn");
    assert.match(String(warn?.msg), /test Worker was still busy 50 ms after its call's deadline/);
    assert.ok(lines.some((l) => l.msg === "The test Worker is ready again"));
    host.close();
  },
});

Deno.test("an abandoned call that ends within the grace period keeps its Worker", async () => {
  const { host, starts } = await supervised({ graceMs: 60_000 });
  const controller = new AbortController();
  const call = host.call("work", { ms: 200 }, { signal: controller.signal });
  setTimeout(() => controller.abort(new RangeError("client left")), 20);
  await assert.rejects(call, (e) => e instanceof RangeError && e.message === "client left");
  assert.equal(await host.call("count", null), 1, "the same Worker, its work done");
  assert.equal(host.replaced, 0);
  assert.equal(starts(), 1);
  host.close();
});

Deno.test("a Worker that crashes is restarted, logged with why; readiness says restarting", async () => {
  const { host, lines } = await supervised();
  await assert.rejects(
    host.call("crash", null),
    (e) => e instanceof ClassifierError && e.code === "not_ready",
  );
  assert.equal(host.state.status, "restarting");
  assert.match(host.state.reason!, /test Worker is restarting/);
  assert.equal(await host.call("echo", "again"), "again");
  await ready(host);
  const warn = lines.find((l) => l.level === "warn");
  assert.match(String(warn?.msg), /The test Worker crashed .*on purpose.*: starting a fresh one/);
  host.close();
});

Deno.test("restart() terminates a Worker and a fresh one takes the queued calls", async () => {
  const { host, lines } = await supervised();
  const running = host.call("work", { ms: 60_000 });
  const waiting = host.call("echo", "queued");
  host.restart(0, "was restarted by the test");
  await assert.rejects(running, (e) => e instanceof ClassifierError && e.code === "not_ready");
  assert.equal(await waiting, "queued");
  assert.ok(lines.some((l) => /was restarted by the test/.test(String(l.msg))));
  assert.throws(() => host.restart(5, "no such"), RangeError);
  host.close();
});

Deno.test("a Worker that cannot be started again is retried, then the host fails for good", async () => {
  let calls = 0;
  const { host, lines } = await supervised({
    retryMs: 10,
    maxFailedStarts: 2,
    start(channelOptions) {
      if (calls++ > 0) return Promise.reject(new TypeError("no more Workers"));
      return Promise.resolve(
        new WorkerChannel<TestMethods>(startWorker(URL_, "the test Worker"), channelOptions),
      );
    },
  });
  host.restart(0, "was restarted by the test");
  while (host.state.status !== "failed") await new Promise((r) => setTimeout(r, 10));
  assert.match(host.state.reason!, /could not be restarted; restart the server/);
  assert.equal(lines.filter((l) => l.level === "error").length, 2);
  await assert.rejects(
    host.call("echo", "x"),
    (e) => e instanceof ClassifierError && e.code === "not_ready",
  );
  await assert.rejects(
    Supervisor.start({ what: "x", workers: 0, start: () => Promise.reject() }),
    RangeError,
  );
  host.close();
});
