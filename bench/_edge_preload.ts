/**
 * Loaded before the entrypoint by `deno task edge:sim` (`deno run --preload`):
 * makes this process look like an edge isolate and reports what the harness
 * cannot see from outside.
 *
 * - The Worker constructor is removed (Supabase has no Web Worker API).
 * - `Deno.serve` listens on 127.0.0.1:$EDGE_SIM_PORT whatever the entrypoint
 *   asks, as a platform routes its traffic to the isolate.
 * - A 20 ms timer watches the event loop; each time it fires more than 50 ms
 *   late, one line `edge-sim-block {"blocked_ms":…,"at":<epoch ms>}` goes to
 *   stderr.
 *
 * The filesystem is read-only because the sim grants no --allow-write.
 *
 * @module
 */
delete (globalThis as { Worker?: unknown }).Worker;

const port = Number(Deno.env.get("EDGE_SIM_PORT"));
if (port > 0) {
  const serve = Deno.serve;
  const where = { hostname: "127.0.0.1", port };
  // deno-lint-ignore no-explicit-any
  (Deno as any).serve = (a: any, b?: any) => {
    if (typeof a === "function") return serve(where, a);
    return b === undefined ? serve({ ...a, ...where }) : serve({ ...a, ...where }, b);
  };
}

const EVERY_MS = 20;
let last = performance.now();
const timer = setInterval(() => {
  const now = performance.now();
  const blocked = now - last - EVERY_MS;
  last = now;
  if (blocked > 50) {
    const line = JSON.stringify({ blocked_ms: Math.round(blocked), at: Date.now() });
    console.error(`edge-sim-block ${line}`);
  }
}, EVERY_MS);
Deno.unrefTimer(timer);
