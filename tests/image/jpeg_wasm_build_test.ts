import assert from "node:assert/strict";
import { assertRebuildsByteForByte, CARGO, skipRebuild } from "../_wasm_rebuild.ts";

const WASM_DIR = new URL("../../wasm/decode/", import.meta.url);
const skip = skipRebuild("wasm/decode/jpeg_decode.wasm");

Deno.test({
  name:
    "wasm/decode/build.sh rebuilds the committed jpeg_decode.wasm byte for byte from another path",
  ignore: skip,
  fn: () => assertRebuildsByteForByte(WASM_DIR, "jpeg_decode.wasm"),
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
