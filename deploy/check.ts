/**
 * `deno task deploy:check`: everything that can be checked offline before an upload.
 *
 * 1. deno.json's `deploy` key against the structure `deno deploy` accepts
 *    (deploy/deploy_key.schema.json), and that its entrypoint is uploaded.
 * 2. Per platform, the upload set (deploy/upload_set.ts: as `deno deploy`
 *    lists it, .gitignore included; the edge function's module graph and page
 *    for Netlify and Supabase), its size against the platform's code cap.
 * 3. Per platform, the server run from a temp folder holding only that set
 *    (plus the npm packages `deno install` puts there from deno.lock, as the
 *    platform's install or bundling step does), with --allow-read limited to
 *    that folder, under the profile's limits (bench/edge_sim.ts): `/`,
 *    `/predict` and the page's in-browser runtime (`/vendor/ort/*`) must answer.
 *    The model is fetched at cold start from a loopback URL (models are
 *    git-ignored, so no platform is given one): the synthetic int8 AlexNet,
 *    made with `deno task quantize` when missing.
 *
 * ```sh
 * deno task deploy:check                       # all three platforms
 * deno task deploy:check --profile supabase --keep
 * ```
 *
 * Exits 1 when a check fails.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { formatReport, resolveModel, runEdgeSim } from "../bench/edge_sim.ts";
import { EDGE_PROFILES, type EdgeProfileName, PROFILES } from "../src/platform/mod.ts";
import { validate } from "./_schema.ts";
import { readDeployKey, type UploadSet, uploadSet } from "./upload_set.ts";

const ROOT = new URL("../", import.meta.url);
const MB = 1024 * 1024;

/** The placeholder `org` in deno.json: a user replaces it or passes `--org`. */
export const ORG_PLACEHOLDER = "your-org";

/** Problems with deno.json's deploy key; empty when `deno deploy` would accept it. */
export async function checkDeployKey(root: URL = ROOT): Promise<string[]> {
  const schema = JSON.parse(
    await Deno.readTextFile(new URL("deploy/deploy_key.schema.json", root)),
  );
  const json = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  if (json.deploy === undefined) return ['deno.json has no "deploy" key'];
  return validate(json.deploy, schema, "deploy");
}

/** The size the platform's cap is about, and the cap, in bytes. */
export function sizeAgainstCap(set: UploadSet): { what: string; bytes: number; cap: number } {
  const cap = PROFILES[set.platform].codeBytes!;
  // Deno Deploy: all files of a deployment; Netlify: the bundle after compression; Supabase: the
  // bundle (our code here; npm packages are added by its bundler, so this is a lower bound).
  if (set.platform === "netlify") return { what: "gzip", bytes: set.gzipBytes, cap };
  return { what: "bytes", bytes: set.bytes, cap };
}

/** Copies an upload set to a fresh temp folder and installs its npm packages there. */
export async function stageCopy(set: UploadSet, root: URL = ROOT): Promise<URL> {
  const dir = await Deno.makeTempDir({ prefix: `deploy-check-${set.platform}-` });
  const copy = new URL(`file://${dir}/`);
  // Netlify and Supabase read deploy/import_map.json; locally deno.json and deno.lock stand in.
  const extra = set.platform === "deno-deploy" ? [] : ["deno.json", "deno.lock"];
  for (const file of [...set.files, ...extra]) {
    const to = new URL(file, copy);
    await Deno.mkdir(new URL("./", to), { recursive: true });
    await Deno.copyFile(new URL(file, root), to);
  }
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["install", "--quiet"],
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(
      `Cannot install the npm packages in ${dir}: ${new TextDecoder().decode(stderr).trim()}`,
    );
  }
  return copy;
}

/** One platform's checks; returns its failures (empty: passed). */
async function checkPlatform(
  platform: EdgeProfileName,
  model: string,
  keep: boolean,
): Promise<string[]> {
  const failures: string[] = [];
  const set = await uploadSet(ROOT, platform);
  const size = sizeAgainstCap(set);
  const mb = (n: number) => (n / MB).toFixed(2);
  console.log(
    `${platform}: ${set.files.length} files, ${mb(set.bytes)} MB (${
      mb(set.gzipBytes)
    } MB gzip); cap ${mb(size.cap)} MB of ${size.what}: ${
      size.bytes <= size.cap ? "fits" : "OVER"
    }; npm packages added by the platform: ${set.npm.length}`,
  );
  if (size.bytes > size.cap) failures.push(`${platform}: the upload is over the code cap`);
  if (!set.files.includes(set.entrypoint)) {
    failures.push(`${platform}: the entrypoint ${set.entrypoint} is not uploaded`);
  }
  const copy = await stageCopy(set);
  try {
    // The manifest a user gives with MODEL_MANIFEST, inside the copy (the only folder readable).
    const manifest = new URL(".deploy-check/model.json", copy);
    await Deno.mkdir(new URL("./", manifest), { recursive: true });
    await Deno.copyFile(model.replace(/\.onnx$/i, ".json"), manifest);
    const report = await runEdgeSim({
      profile: platform,
      model,
      manifest: manifest.pathname,
      requests: 3,
      root: copy,
      readOnlyRoot: true,
      modelFrom: "url",
      env: { BACKEND: "wasm" },
    });
    console.log(formatReport(report).split("\n").map((l) => `  ${l}`).join("\n"));
    if (!report.pageOk) failures.push(`${platform}: the page (/) failed`);
    if (!report.predictOk) failures.push(`${platform}: /predict failed`);
    if (!report.ortOk) failures.push(`${platform}: /vendor/ort/* failed`);
    if (failures.length > 0) console.log(report.log.slice(-15).join("\n"));
  } finally {
    if (keep) console.log(`  kept ${copy.pathname}`);
    else await Deno.remove(copy, { recursive: true });
  }
  return failures;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      profile: { type: "string", multiple: true },
      keep: { type: "boolean", default: false },
    },
  });
  const failures: string[] = [];
  const keyProblems = await checkDeployKey();
  failures.push(...keyProblems);
  const deploy = await readDeployKey(ROOT).catch(() => undefined);
  console.log(
    `deno.json deploy key: ${keyProblems.length === 0 ? "valid" : keyProblems.join("; ")}`,
  );
  if (deploy?.org === ORG_PLACEHOLDER) {
    console.log(
      `  note: deploy.org is "${ORG_PLACEHOLDER}": set yours there or pass --org to deno deploy`,
    );
  }
  const profiles = (values.profile ?? [...EDGE_PROFILES]).flatMap((p) => p.split(","));
  const model = await resolveModel("int8");
  for (const p of profiles) {
    if (!EDGE_PROFILES.includes(p as EdgeProfileName)) {
      failures.push(`Cannot check "${p}": expected ${EDGE_PROFILES.join(", ")}`);
      continue;
    }
    failures.push(...await checkPlatform(p as EdgeProfileName, model, values.keep!));
  }
  if (failures.length > 0) {
    console.error(`deploy:check FAILED:\n  ${failures.join("\n  ")}`);
    Deno.exit(1);
  }
  console.log("deploy:check passed");
}
