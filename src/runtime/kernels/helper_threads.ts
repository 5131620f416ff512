/**
 * Helper threads started by one thread and driven by another: the server's thread starts
 * the split kernels' helper Workers for its inference Worker ({@linkcode startHelperWorker}),
 * which takes them up ({@linkcode adoptHelpers}). A Worker started from inside a Worker
 * takes Deno 2.9 0.5-1 s to start; from the main thread, ~50 ms.
 *
 * @module
 */
export { adoptHelpers, startHelperWorker } from "./_split_helpers.ts";
