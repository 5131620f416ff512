import assert from "node:assert/strict";
import { BoundedQueue, QueueFullError } from "../../src/host/bounded_queue.ts";

const tick = () => new Promise((r) => setTimeout(r, 1));

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

Deno.test("BoundedQueue runs tasks one at a time in arrival order", async () => {
  const queue = new BoundedQueue();
  const log: string[] = [];
  let running = 0;
  const task = (name: string) => async () => {
    running++;
    assert.equal(running, 1, "never two at once");
    log.push(`start ${name}`);
    await tick();
    log.push(`end ${name}`);
    running--;
    return name;
  };
  const results = await Promise.all(["a", "b", "c"].map((n) => queue.run(task(n))));
  assert.deepEqual(results, ["a", "b", "c"]);
  assert.deepEqual(log, ["start a", "end a", "start b", "end b", "start c", "end c"]);
  assert.equal(queue.pending, 0);
});

Deno.test("BoundedQueue refuses a task over its capacity at once, and counts it", async () => {
  const queue = new BoundedQueue({ capacity: 2 });
  const gate = deferred();
  const a = queue.run(() => gate.promise);
  const b = queue.run(() => gate.promise);
  assert.equal(queue.pending, 2);
  await assert.rejects(() => queue.run(() => Promise.resolve()), (e: unknown) => {
    assert.ok(e instanceof QueueFullError);
    assert.ok(e instanceof RangeError);
    assert.equal(e.capacity, 2);
    assert.match(e.message, /^Cannot queue the task: the queue holds its maximum of 2$/);
    return true;
  });
  assert.equal(queue.rejected, 1);
  gate.resolve();
  await Promise.all([a, b]);
  assert.equal(queue.pending, 0);
  assert.equal(await queue.run(() => Promise.resolve("room again")), "room again");
});

Deno.test("BoundedQueue keeps going after a task throws or rejects", async () => {
  const queue = new BoundedQueue({ capacity: 3 });
  const sync = queue.run(() => {
    throw new TypeError("sync");
  });
  const async = queue.run(() => Promise.reject(new Error("async")));
  const ok = queue.run(() => Promise.resolve(7));
  await assert.rejects(sync, TypeError);
  await assert.rejects(async, /async/);
  assert.equal(await ok, 7);
});

Deno.test("BoundedQueue drops a waiting task whose signal aborts, never a running one", async () => {
  const queue = new BoundedQueue({ capacity: 3 });
  const gate = deferred();
  const running = new AbortController();
  const waiting = new AbortController();
  let ranWaiting = false;
  const first = queue.run(() => gate.promise.then(() => "first"), { signal: running.signal });
  const second = queue.run(() => {
    ranWaiting = true;
    return Promise.resolve();
  }, { signal: waiting.signal });
  await tick();
  waiting.abort(new DOMException("gone", "AbortError"));
  running.abort();
  await assert.rejects(second, /gone/);
  assert.equal(queue.pending, 1, "the waiting task left at once");
  gate.resolve();
  assert.equal(await first, "first", "the running task finished");
  assert.equal(ranWaiting, false);
  const aborted = AbortSignal.abort(new Error("already"));
  await assert.rejects(() => queue.run(() => Promise.resolve(), { signal: aborted }), /already/);
  assert.equal(queue.rejected, 0, "aborts are not rejections");
});

Deno.test("BoundedQueue never calls a task synchronously, and checks its capacity", () => {
  const queue = new BoundedQueue();
  let called = false;
  void queue.run(() => {
    called = true;
    return Promise.resolve();
  });
  assert.equal(called, false);
  assert.throws(() => new BoundedQueue({ capacity: 0 }), RangeError);
  assert.equal(new BoundedQueue().capacity, Infinity);
});

Deno.test("BoundedQueue with yieldToEventLoop lets a timer due before a task start run first", async () => {
  // Each task sets a 0 ms timer, as a request's I/O would be waiting while a run blocks. With
  // yielding the next task starts a macrotask later, after that timer; without, a promise chain
  // runs all tasks before any timer.
  for (const yieldToEventLoop of [false, true]) {
    const queue = new BoundedQueue({ yieldToEventLoop });
    const fired: number[] = [];
    const seenAtStart: number[][] = [];
    const runs = Array.from({ length: 5 }, (_, i) =>
      queue.run(() => {
        seenAtStart.push([...fired]);
        setTimeout(() => fired.push(i), 0);
        return Promise.resolve();
      }));
    await Promise.all(runs);
    const want = yieldToEventLoop
      ? [[], [0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]
      : [[], [], [], [], []];
    assert.deepEqual(seenAtStart, want, `yieldToEventLoop: ${yieldToEventLoop}`);
    assert.equal(queue.pending, 0);
  }
});
