/**
 * Loading wasm/alexnet_kernels.wasm for every kernel (LRN, int8): the default
 * module is read and compiled once per process; callers may pass bytes, a
 * compiled module or a file:/http(s): URL instead. Each caller instantiates
 * its own instance (its own memory).
 *
 * @module
 */

/** The committed module, resolved beside this file so it works from a checkout and when served. */
const DEFAULT_WASM_URL = new URL("../../../wasm/alexnet_kernels.wasm", import.meta.url);

/** Where the module comes from: its bytes, a compiled module, or a file:/http(s): URL. */
export type WasmSource = BufferSource | WebAssembly.Module | URL;

let defaultModule: Promise<WebAssembly.Module> | undefined;

/** Reads a module: `fetch` for http(s) (browsers), the file system for file: URLs (Deno). */
async function readModule(action: string, url: URL): Promise<Uint8Array<ArrayBuffer>> {
  if (url.protocol === "file:") return await Deno.readFile(url);
  if (url.protocol === "http:" || url.protocol === "https:") {
    const res = await fetch(url);
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`${action}: ${url} answered HTTP ${res.status}`);
    }
    return new Uint8Array(await res.arrayBuffer());
  }
  throw new TypeError(`${action}: unsupported URL scheme ${url.protocol}`);
}

function compileDefault(action: string): Promise<WebAssembly.Module> {
  // One compile per process; a failure is not cached, so a later call can retry.
  defaultModule ??= readModule(action, DEFAULT_WASM_URL)
    .then((bytes) => WebAssembly.compile(bytes))
    .catch((e) => {
      defaultModule = undefined;
      throw e;
    });
  return defaultModule;
}

/**
 * A fresh instance of the kernels module, checked to export `functions` and a
 * memory. `action` starts every error message ("Cannot load the LRN kernel").
 */
export async function instantiateKernels(
  action: string,
  functions: readonly string[],
  wasm?: WasmSource,
): Promise<WebAssembly.Exports> {
  const module = wasm === undefined
    ? await compileDefault(action)
    : wasm instanceof WebAssembly.Module
    ? wasm
    : await WebAssembly.compile(wasm instanceof URL ? await readModule(action, wasm) : wasm);
  const exports = (await WebAssembly.instantiate(module, {})).exports;
  for (const name of functions) {
    if (typeof exports[name] !== "function") {
      throw new TypeError(`${action}: the module has no "${name}" export`);
    }
  }
  if (!(exports.memory instanceof WebAssembly.Memory)) {
    throw new TypeError(`${action}: the module exports no memory`);
  }
  return exports;
}
