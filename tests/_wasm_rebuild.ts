/**
 * The check both committed WebAssembly builds get: a copy of the crate in
 * another folder rebuilds the committed `.wasm` byte for byte with its
 * build.sh, and the committed `.sha256` matches.
 *
 * Without the Debian Rust toolchain (a user's fresh machine) the checks are
 * skipped, saying so; CI sets ALEXNET_REQUIRE_WASM_REBUILD=1, so there a
 * missing toolchain fails instead. ALEXNET_SKIP_WASM_REBUILD=1 skips them.
 */
import assert from "node:assert/strict";

/** The pinned toolchain's cargo (wasm/build.sh). */
export const CARGO = "/usr/bin/cargo";

const hasCargo = (() => {
  try {
    return Deno.statSync(CARGO).isFile;
  } catch {
    return false;
  }
})();

/** Whether the rebuild checks of `what` (a path, for the message) are skipped here. */
export function skipRebuild(what: string): boolean {
  const required = Deno.env.get("ALEXNET_REQUIRE_WASM_REBUILD") === "1";
  const skip = Deno.env.get("ALEXNET_SKIP_WASM_REBUILD") === "1" || (!hasCargo && !required);
  if (skip && !hasCargo) {
    console.warn(
      `Skipping the ${what} rebuild checks: ${CARGO} is missing ` +
        "(apt-get install -y rustc cargo libstd-rust-dev-wasm32 lld binaryen wabt to run them).",
    );
  }
  return skip;
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Copies the files of `from` (when it exists) into a new folder `to`. */
async function copyFolder(from: URL, to: string): Promise<void> {
  try {
    if (!(await Deno.stat(from)).isDirectory) return;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (entry.isFile) await Deno.copyFile(new URL(entry.name, from), `${to}/${entry.name}`);
  }
}

/**
 * Copies the crate at `crateDir` (Cargo.toml, Cargo.lock, build.sh, src/, relaxed/) to a
 * temporary folder, builds it there and checks `wasmName` and its .sha256.
 */
export async function assertRebuildsByteForByte(crateDir: URL, wasmName: string): Promise<void> {
  const buildScript = `${decodeURIComponent(crateDir.pathname)}build.sh`;
  if (!hasCargo) {
    assert.fail(
      `Cannot rebuild ${wasmName}: ${CARGO} is missing. Install the pinned toolchain ` +
        "(apt-get install -y rustc cargo libstd-rust-dev-wasm32 lld binaryen wabt) " +
        "or set ALEXNET_SKIP_WASM_REBUILD=1 to skip this check.",
    );
  }
  const tmp = await Deno.makeTempDir({ prefix: "alexnet_wasm_rebuild_" });
  try {
    // A copy of the crate elsewhere, so the bytes must not depend on the checkout path.
    const crate = `${tmp}/elsewhere/crate`;
    await Deno.mkdir(`${crate}/src`, { recursive: true });
    for (const file of ["Cargo.toml", "Cargo.lock", "build.sh"]) {
      await Deno.copyFile(new URL(file, crateDir), `${crate}/${file}`);
    }
    for (const dir of ["src", "relaxed"]) {
      await copyFolder(new URL(`${dir}/`, crateDir), `${crate}/${dir}`);
    }
    const { code, stderr } = await new Deno.Command("bash", {
      args: [`${crate}/build.sh`, `${tmp}/out`],
      env: { CARGO_TARGET_DIR: `${tmp}/target` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const log = new TextDecoder().decode(stderr);
    assert.equal(code, 0, `${buildScript} failed:\n${log}`);

    const rebuilt = await Deno.readFile(`${tmp}/out/${wasmName}`);
    const committed = await Deno.readFile(new URL(wasmName, crateDir));
    const recorded = (await Deno.readTextFile(new URL(`${wasmName}.sha256`, crateDir)))
      .split(/\s+/)[0];
    assert.equal(await sha256(committed), recorded, `${wasmName}.sha256 is stale`);
    assert.equal(
      await sha256(rebuilt),
      recorded,
      `the rebuilt module differs from the committed one: run \`bash ${buildScript}\` and ` +
        `commit both files (build log:\n${log})`,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}
