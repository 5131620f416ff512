/**
 * Preloaded into main.ts by main_test.ts (`deno run --preload`): on SIGUSR1 it
 * throws from a timer and leaves a promise rejection unhandled, as a bug in a
 * request's background work would. main.ts must log both and keep serving.
 *
 * @module
 */
Deno.addSignalListener("SIGUSR1", () => {
  setTimeout(() => {
    throw new TypeError("Injected fault: thrown from a timer");
  }, 0);
  void Promise.reject(new RangeError("Injected fault: a rejection nobody handles"));
});
