/**
 * Run by fetch_startup_test.ts without --allow-write (so even root cannot
 * write): chooses the start-up model for the empty directory given, with a
 * mirror that counts any request made to it, and prints the choice as JSON.
 */
import { chooseStartupModel } from "../../src/model/fetch_startup.ts";

const [dir, mirror] = Deno.args;
let requests = 0;
const counting: typeof fetch = () => {
  requests++;
  return Promise.reject(new TypeError("the read-only start-up asked a mirror"));
};
const choice = await chooseStartupModel({
  dir: new URL(`file://${dir}/`),
  builtin: false,
  fetch: counting,
  progress: false,
  mirrors: [mirror],
});
console.log(JSON.stringify({ requests, model: choice.model ?? null, reason: choice.reason }));
