/**
 * Hooks wasm/relaxed/dot7.wasm (the relaxed-SIMD dot block of the 7-bit convs,
 * wasm/src/qconv7.rs) into an instance of the kernels module: the relaxed module imports
 * the instance's memory, its `dot7` goes into a new slot of the instance's function
 * table, and `use_dot7(slot)` makes the kernels call it (a call_indirect, wasm to wasm).
 * Where the engine refuses relaxed SIMD (`WebAssembly.validate`), nothing is hooked and
 * the kernels keep their core-SIMD block: the same sums, slower.
 *
 * @module
 */
import { WASM_BASE64 } from "./_relaxed_wasm.ts";

let relaxedModule: Promise<WebAssembly.Module | undefined> | undefined;

/** The relaxed module, compiled once per process; undefined where the engine refuses it. */
function compileRelaxed(): Promise<WebAssembly.Module | undefined> {
  relaxedModule ??= (async () => {
    const bytes = Uint8Array.fromBase64(WASM_BASE64);
    if (!WebAssembly.validate(bytes)) return undefined;
    return await WebAssembly.compile(bytes);
  })().catch(() => undefined);
  return relaxedModule;
}

/** Whether this engine runs the relaxed module (validates and compiles it). */
export async function relaxedSimdAvailable(): Promise<boolean> {
  return (await compileRelaxed()) !== undefined;
}

/**
 * Puts the relaxed `dot7` into the kernels instance `k`; returns whether it did (false:
 * the engine refuses relaxed SIMD, or the module has no function table or `use_dot7`).
 */
export async function attachRelaxedDot(k: WebAssembly.Exports): Promise<boolean> {
  const module = await compileRelaxed();
  const { memory, __indirect_function_table: table, use_dot7: useDot7 } = k;
  if (
    module === undefined || !(memory instanceof WebAssembly.Memory) ||
    !(table instanceof WebAssembly.Table) || typeof useDot7 !== "function"
  ) {
    return false;
  }
  const { dot7 } = (await WebAssembly.instantiate(module, { env: { memory } })).exports;
  if (typeof dot7 !== "function") return false;
  const slot = table.grow(1);
  table.set(slot, dot7);
  useDot7(slot);
  return true;
}
