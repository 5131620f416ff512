/**
 * What each platform is given (deploy/upload_set.ts), and the server run from
 * a copy of only that, with --allow-read limited to the copy.
 */
import assert from "node:assert/strict";
import { formatReport, runEdgeSim } from "../../bench/edge_sim.ts";
import { stageCopy } from "../../deploy/check.ts";
import {
  denoDeployFiles,
  keptByDeployKey,
  matchesEntry,
  readDeployKey,
  uploadSet,
} from "../../deploy/upload_set.ts";
import { EDGE_PROFILES } from "../../src/platform/mod.ts";
import { writeQOperatorModel } from "../model/_qoperator_models.ts";

const ROOT = new URL("../../", import.meta.url);
const hasGit = await new Deno.Command("git", { args: ["--version"], stdout: "null" }).output()
  .then((o) => o.success, () => false);

Deno.test("include and exclude entries: a path names itself and what is under it, a glob matches", () => {
  assert.ok(matchesEntry("src/", "src/a/b.ts"));
  assert.ok(matchesEntry("src", "src/a.ts"));
  assert.ok(!matchesEntry("src/", "srcx/a.ts"));
  assert.ok(matchesEntry("models/*.json", "models/a.json"));
  assert.ok(!matchesEntry("models/*.json", "models/sub/a.json"));
  assert.ok(matchesEntry("models/alexnet-synthetic*", "models/alexnet-synthetic-int8.json"));
  assert.ok(matchesEntry("**/*.md", "docs/deep/x.md"));
  const key = { org: "o", include: ["src/", "models/*.json"], exclude: ["src/cli/"] };
  assert.ok(keptByDeployKey(key, "src/server.ts"));
  assert.ok(!keptByDeployKey(key, "src/cli/quantize.ts"));
  assert.ok(!keptByDeployKey(key, "README.md"));
  assert.ok(keptByDeployKey({ org: "o" }, "README.md"));
});

Deno.test({
  name: "the upload set skips what .gitignore ignores, as git itself decides",
  ignore: !hasGit,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "deploy-gitignore-" });
    const files = [
      "a.ts",
      "b.log",
      "keep.log",
      "build/out.js",
      "src/x.ts",
      "src/gen/y.ts",
      "src/gen/keep.ts",
      "src/sub/b.log",
      "doc/notes.md",
      "doc/deep/notes.md",
      "models/m.onnx",
      "models/m.json",
      "models/alexnet-synthetic.json",
      "models/sub/z.onnx",
      "space name.txt",
      "[x].txt",
      "node_modules/p/index.js",
    ];
    for (const f of files) {
      await Deno.mkdir(`${dir}/${f.slice(0, f.lastIndexOf("/") + 1) || "."}`, { recursive: true });
      await Deno.writeTextFile(`${dir}/${f}`, f);
    }
    await Deno.writeTextFile(
      `${dir}/.gitignore`,
      "# comment\n*.log\n!keep.log\nbuild/\n/doc/*.md\nmodels/*.onnx\nmodels/alexnet-synthetic*.json\n" +
        "\\[x].txt\n",
    );
    await Deno.writeTextFile(`${dir}/src/.gitignore`, "gen/*\n!gen/keep.ts\n");
    const git = (args: string[], stdin?: string) => {
      const child = new Deno.Command("git", {
        args,
        cwd: dir,
        stdin: stdin === undefined ? "null" : "piped",
        stdout: "piped",
        stderr: "null",
      }).spawn();
      if (stdin !== undefined) {
        const w = child.stdin.getWriter();
        w.write(new TextEncoder().encode(stdin)).then(() => w.close());
      }
      return child.output();
    };
    await git(["init", "-q"]);
    const listed = [
      ...files.filter((f) => !f.startsWith("node_modules/")),
      ".gitignore",
      "src/.gitignore",
    ];
    const out = await git(["check-ignore", "--stdin"], listed.join("\n") + "\n");
    const ignoredByGit = new Set(new TextDecoder().decode(out.stdout).split("\n").filter(Boolean));
    const expected = listed.filter((f) => !ignoredByGit.has(f)).sort();
    assert.ok(ignoredByGit.size >= 6, [...ignoredByGit].join(", ")); // the case is not trivial
    assert.deepEqual(await denoDeployFiles(new URL(`file://${dir}/`), { org: "o" }), expected);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("deno deploy's upload set holds the server's code and page, never node_modules, tests or weights", async () => {
  const set = await uploadSet(ROOT, "deno-deploy");
  for (const f of ["main.ts", "deno.json", "deno.lock", "src/server.ts", "static/index.html"]) {
    assert.ok(set.files.includes(f), f);
  }
  // Our WebAssembly travels as modules, not as .wasm files.
  assert.ok(set.files.includes("src/runtime/kernels/_kernels_wasm.ts"));
  assert.ok(set.files.includes("src/image/_jpeg_decode_wasm.ts"));
  for (const f of set.files) {
    assert.ok(!/^(node_modules|tests|bench|deploy|\.git)\//.test(f), f);
    assert.ok(!f.endsWith(".onnx"), f);
  }
  const deploy = await readDeployKey(ROOT);
  assert.ok(set.files.every((f) => keptByDeployKey(deploy, f)));
});

Deno.test("Netlify's and Supabase's sets are the function's static imports, the import map and the page", async () => {
  for (const platform of ["netlify", "supabase"] as const) {
    const set = await uploadSet(ROOT, platform);
    assert.ok(set.files.includes(set.entrypoint), platform);
    assert.ok(set.files.includes("src/server.ts"), platform);
    assert.ok(set.files.includes("src/runtime/kernels/_kernels_wasm.ts"), platform);
    assert.ok(set.files.includes("static/index.html"), platform);
    assert.ok(set.files.includes("deploy/import_map.json"), platform);
    assert.ok(!set.files.includes("main.ts"), platform);
    assert.ok(!set.files.some((f) => f.endsWith(".wasm")), platform);
  }
});

/**
 * A small int8 model of the zoo's QOperator structure: served on our int8 kernels, so the
 * kernels' WebAssembly must reach the server (the JPEG decoder's too: the image is a JPEG).
 */
function writeInt8Model(): Promise<{ dir: string; model: string }> {
  return writeQOperatorModel({
    name: "upload-test-int8",
    classes: 10,
    prefix: "alexnet-edge-upload-",
  });
}

const int8 = await writeInt8Model();

for (const platform of EDGE_PROFILES) {
  Deno.test({
    name:
      `a copy of only ${platform}'s upload set, readable alone, serves /, /predict and /vendor/ort/*`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const set = await uploadSet(ROOT, platform);
      const copy = await stageCopy(set);
      try {
        // The model's manifest and labels, as a user configures them, inside the copy.
        const settings = new URL(".deploy-check/", copy);
        await Deno.mkdir(settings, { recursive: true });
        await Deno.copyFile(`${int8.dir}/qop.json`, new URL("qop.json", settings));
        await Deno.copyFile(`${int8.dir}/labels.txt`, new URL("labels.txt", settings));
        // Only what was copied is there: no models, no tests, no .wasm files.
        for (const absent of ["tests", "models/alexnet-synthetic-int8.onnx", "wasm"]) {
          assert.equal(await Deno.stat(new URL(absent, copy)).then(() => true, () => false), false);
        }
        const report = await runEdgeSim({
          profile: platform,
          model: int8.model,
          manifest: new URL("qop.json", settings).pathname,
          requests: 2,
          root: copy,
          readOnlyRoot: true,
          modelFrom: "url",
          env: { BACKEND: "wasm" },
        });
        const why = `\n${formatReport(report)}\n${report.log.join("\n")}`;
        assert.ok(report.coldStartMs !== null, `never ready${why}`);
        assert.ok(report.pageOk, `/ failed${why}`);
        assert.ok(report.predictOk, `/predict failed${why}`);
        assert.ok(report.ortOk, `/vendor/ort/* failed${why}`);
        assert.equal(report.modelSource, "fetched from URL");
        assert.ok(
          report.log.some((l) =>
            l.includes("QOperator int8 model rewritten to QDQ for our int8 kernels")
          ),
          `not on our int8 kernels${why}`,
        );
      } finally {
        await Deno.remove(copy, { recursive: true });
      }
    },
  });
}
