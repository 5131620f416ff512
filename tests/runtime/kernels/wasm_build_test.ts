import { assertRebuildsByteForByte, skipRebuild } from "../../_wasm_rebuild.ts";

const WASM_DIR = new URL("../../../wasm/", import.meta.url);

Deno.test({
  name: "wasm/build.sh rebuilds the committed alexnet_kernels.wasm byte for byte from another path",
  ignore: skipRebuild("wasm/alexnet_kernels.wasm"),
  fn: () => assertRebuildsByteForByte(WASM_DIR, "alexnet_kernels.wasm"),
});

Deno.test({
  name: "wasm/build.sh reassembles the committed relaxed/dot7.wasm byte for byte from another path",
  ignore: skipRebuild("wasm/relaxed/dot7.wasm"),
  fn: () => assertRebuildsByteForByte(WASM_DIR, "relaxed/dot7.wasm"),
});
