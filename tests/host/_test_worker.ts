/**
 * A Worker for the tests of src/host: counts the work it starts, blocks on
 * request, fails as asked, logs as asked and crashes on request.
 *
 * @module
 */
import { ClassifierError, type ErrorCode } from "../../src/errors.ts";
import type { LogFields, LogLevel } from "../../src/log.ts";
import { type Handlers, serveMessages, workerLogger } from "../../src/host/messages.ts";

/** The test Worker's methods. */
export type TestMethods = {
  echo: { body: string; result: string };
  /** Blocks the Worker's thread for `ms` (work nothing inside can cut off); counted. */
  work: { body: { ms: number }; result: number };
  /** How many `work` calls this Worker has started. */
  count: { body: null; result: number };
  fail: { body: { code?: ErrorCode; name?: string; message: string }; result: never };
  log: { body: { level: LogLevel; msg: string; fields?: LogFields }; result: null };
  /** Throws outside any call: the Worker dies. */
  crash: { body: null; result: never };
};

const log = workerLogger();
let started = 0;

const handlers: Handlers<TestMethods> = {
  echo: (text) => Promise.resolve(text),
  work({ ms }) {
    started++;
    const until = performance.now() + ms;
    while (performance.now() < until) {
      // busy, as a decode of a hostile image is
    }
    return Promise.resolve(started);
  },
  count: () => Promise.resolve(started),
  fail({ code, name, message }) {
    if (code) throw new ClassifierError(code, message);
    throw name === "RangeError" ? new RangeError(message) : new Error(message);
  },
  log({ level, msg, fields }) {
    log.log(level, msg, fields);
    return Promise.resolve(null);
  },
  crash() {
    setTimeout(() => {
      throw new Error("the test Worker crashed on purpose");
    }, 0);
    return new Promise(() => {});
  },
};

serveMessages(handlers);
