import assert from "node:assert/strict";

const WASM_DIR = new URL("../../wasm/decode/", import.meta.url);
const CARGO = "/usr/bin/cargo";
// Without the Rust toolchain (a user's fresh machine) the rebuild checks are skipped, saying so;
// CI sets ALEXNET_REQUIRE_WASM_REBUILD=1 so there a missing toolchain fails instead.
const hasCargo = (() => {
  try {
    return Deno.statSync(CARGO).isFile;
  } catch {
    return false;
  }
})();
const required = Deno.env.get("ALEXNET_REQUIRE_WASM_REBUILD") === "1";
const skip = Deno.env.get("ALEXNET_SKIP_WASM_REBUILD") === "1" || (!hasCargo && !required);
if (skip && !hasCargo) {
  console.warn(
    `Skipping the wasm/decode/jpeg_decode.wasm rebuild checks: ${CARGO} is missing ` +
      "(apt-get install -y rustc cargo libstd-rust-dev-wasm32 lld binaryen to run them).",
  );
}

async function exists(path: string | URL): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test({
  name:
    "wasm/decode/build.sh rebuilds the committed jpeg_decode.wasm byte for byte from another path",
  ignore: skip,
  async fn() {
    if (!(await exists(CARGO))) {
      assert.fail(
        `Cannot rebuild wasm/decode/jpeg_decode.wasm: ${CARGO} is missing. Install the pinned ` +
          "toolchain (apt-get install -y rustc cargo libstd-rust-dev-wasm32 lld binaryen) " +
          "or set ALEXNET_SKIP_WASM_REBUILD=1 to skip this check.",
      );
    }
    const tmp = await Deno.makeTempDir({ prefix: "jpeg_decode_wasm_" });
    try {
      // A copy of the crate elsewhere, so the bytes must not depend on the checkout path.
      const crate = `${tmp}/elsewhere/decode`;
      await Deno.mkdir(`${crate}/src`, { recursive: true });
      for (const file of ["Cargo.toml", "Cargo.lock", "build.sh"]) {
        await Deno.copyFile(new URL(file, WASM_DIR), `${crate}/${file}`);
      }
      for await (const entry of Deno.readDir(new URL("src/", WASM_DIR))) {
        await Deno.copyFile(new URL(`src/${entry.name}`, WASM_DIR), `${crate}/src/${entry.name}`);
      }
      const { code, stderr } = await new Deno.Command("bash", {
        args: [`${crate}/build.sh`, `${tmp}/out`],
        env: { CARGO_TARGET_DIR: `${tmp}/target` },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const log = new TextDecoder().decode(stderr);
      assert.equal(code, 0, `wasm/decode/build.sh failed:\n${log}`);

      const rebuilt = await Deno.readFile(`${tmp}/out/jpeg_decode.wasm`);
      const committed = await Deno.readFile(new URL("jpeg_decode.wasm", WASM_DIR));
      const recorded = (await Deno.readTextFile(new URL("jpeg_decode.wasm.sha256", WASM_DIR)))
        .split(/\s+/)[0];
      assert.equal(await sha256(committed), recorded, "jpeg_decode.wasm.sha256 is stale");
      assert.equal(
        await sha256(rebuilt),
        recorded,
        "the rebuilt module differs from the committed one: run `bash wasm/decode/build.sh` and " +
          `commit both files (build log:\n${log})`,
      );
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "the decoder crate's own tests pass natively (reduced IDCT vs its f64 reference, Huffman)",
  ignore: skip,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "jpeg_decode_test_" });
    try {
      const { code, stdout, stderr } = await new Deno.Command(CARGO, {
        args: ["test", "--release", "--offline", "--locked", "--manifest-path", "Cargo.toml"],
        cwd: WASM_DIR,
        env: { PATH: "/usr/bin:/bin", RUSTC: "/usr/bin/rustc", CARGO_TARGET_DIR: tmp },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const log = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
      assert.equal(code, 0, `cargo test failed:\n${log}`);
      assert.match(log, /test result: ok\. [1-9]\d* passed/);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
