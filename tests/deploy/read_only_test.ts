import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

Deno.test({
  name: "on a read-only filesystem the synthetic AlexNet is built in memory and classifies",
  sanitizeResources: false,
  async fn() {
    // Seed 7 is never the one in models/, so the store must generate it, and cannot write.
    const seed = 7;
    const manifest = new URL("models/alexnet-synthetic.json", ROOT);
    const before = await Deno.readTextFile(manifest).catch(() => undefined);
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-env",
        "--no-prompt",
        "--config",
        new URL("deno.json", ROOT).pathname,
        new URL("tests/deploy/_read_only_load.ts", ROOT).pathname,
        String(seed),
      ],
      cwd: ROOT.pathname,
      env: { NO_COLOR: "1", BACKEND: "wasm" },
    }).output();
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, err);
    const out = JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").at(-1)!);
    assert.equal(out.weights.kind, "synthetic");
    assert.equal(out.weights.seed, seed);
    assert.ok(
      out.lines.some((l: string) =>
        /^Cannot write models\/ .*building the synthetic AlexNet in memory$/.test(l)
      ),
      out.lines.join("\n"),
    );
    assert.equal(typeof out.top1.label, "string");
    assert.equal(await Deno.readTextFile(manifest).catch(() => undefined), before);
  },
});
