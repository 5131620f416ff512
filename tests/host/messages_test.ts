import assert from "node:assert/strict";
import { ClassifierError } from "../../src/errors.ts";
import { createLogger } from "../../src/log.ts";
import {
  fromWire,
  hasWorkers,
  movable,
  startWorker,
  toWire,
  WorkerChannel,
} from "../../src/host/messages.ts";
import type { TestMethods } from "./_test_worker.ts";

const URL_ = new URL("./_test_worker.ts", import.meta.url);
const open = (options = {}) =>
  new WorkerChannel<TestMethods>(startWorker(URL_, "the test Worker"), options);

Deno.test("errors cross as { code, message } and come back as the same kind", () => {
  const coded = fromWire(toWire(new ClassifierError("decode_failed", "Cannot decode image: x")));
  assert.ok(coded instanceof ClassifierError);
  assert.equal(coded.code, "decode_failed");
  assert.equal(coded.message, "Cannot decode image: x");
  assert.ok(fromWire(toWire(new RangeError("r"))) instanceof RangeError);
  const timeout = fromWire(toWire(new DOMException("late", "TimeoutError")));
  assert.equal(timeout.name, "TimeoutError");
  assert.deepEqual(toWire("text"), { message: "text", name: "Error" });
  assert.equal(fromWire({ code: "no_such" as never, message: "m" }).constructor, Error);
});

Deno.test("movable lists whole, unshared buffers once", () => {
  const whole = new Float32Array(4);
  const part = new Float32Array(new ArrayBuffer(64), 0, 4);
  const shared = new Float32Array(new SharedArrayBuffer(16));
  assert.deepEqual(movable(whole, whole, part, shared), [whole.buffer]);
});

Deno.test("a channel answers calls by id, in any order, with results and errors", async () => {
  assert.equal(hasWorkers(), true);
  const channel = open();
  const [a, b] = await Promise.all([channel.call("echo", "a"), channel.call("echo", "b")]);
  assert.deepEqual([a, b], ["a", "b"]);
  await assert.rejects(
    channel.call("fail", { code: "decode_failed", message: "Cannot decode image: bad" }),
    (e) => e instanceof ClassifierError && e.code === "decode_failed" && e.status === 422,
  );
  await assert.rejects(
    channel.call("fail", { name: "RangeError", message: "too big" }),
    (e) => e instanceof RangeError && e.message === "too big",
  );
  await assert.rejects(
    channel.call("nope" as "echo", "x"),
    (e) => e instanceof TypeError && /no such method/.test(e.message),
  );
  assert.equal(channel.pending, 0);
  channel.close();
  await assert.rejects(channel.call("echo", "late"), /closed/);
});

Deno.test("a Worker's log lines reach the server's logger with their level and fields", async () => {
  const lines: string[] = [];
  const logger = createLogger({ level: "info", write: (line) => lines.push(line) });
  const channel = open({ logger, fields: { worker: 3 } });
  await channel.call("log", { level: "warn", msg: "Model rewritten", fields: { ms: 12 } });
  await channel.call("log", { level: "debug", msg: "below the server's level" });
  await channel.call("log", { level: "error", msg: "bad", fields: { worker: "mine" } });
  channel.close();
  const parsed = lines.map((l) => JSON.parse(l));
  assert.equal(parsed.length, 2);
  assert.equal(parsed[0].level, "warn");
  assert.equal(parsed[0].msg, "Model rewritten");
  assert.equal(parsed[0].ms, 12);
  assert.equal(parsed[0].worker, 3);
  assert.equal(parsed[1].level, "error");
  assert.equal(parsed[1].worker, 3, "the channel's fields name the Worker");
});

Deno.test("a Worker that crashes rejects its calls with 503 not_ready and reports why", async () => {
  let why = "";
  const exited = Promise.withResolvers<void>();
  const channel = open({
    onExit: (reason: string) => {
      why = reason;
      exited.resolve();
    },
  });
  const call = channel.call("crash", null);
  await assert.rejects(call, (e) => e instanceof ClassifierError && e.code === "not_ready");
  await exited.promise;
  assert.match(why, /crashed .*on purpose/);
  assert.ok(channel.closed);
});
