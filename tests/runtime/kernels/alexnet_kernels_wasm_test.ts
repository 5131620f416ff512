import assert from "node:assert/strict";

// The raw C ABI of wasm/alexnet_kernels.wasm, below src/runtime/kernels/lrn_wasm.ts.
interface Exports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  free(ptr: number, bytes: number): void;
  lrn_f32(...args: number[]): number;
}

async function instantiate(): Promise<Exports> {
  const bytes = await Deno.readFile(new URL("../../../wasm/alexnet_kernels.wasm", import.meta.url));
  const { instance } = await WebAssembly.instantiate(bytes, {});
  return instance.exports as unknown as Exports;
}

Deno.test("alexnet_kernels.wasm imports nothing and exports the C ABI", async () => {
  const bytes = await Deno.readFile(new URL("../../../wasm/alexnet_kernels.wasm", import.meta.url));
  const module = await WebAssembly.compile(bytes);
  assert.deepEqual(WebAssembly.Module.imports(module), []);
  const names = WebAssembly.Module.exports(module).map((e) => `${e.kind} ${e.name}`);
  for (const name of ["memory memory", "function alloc", "function free", "function lrn_f32"]) {
    assert.ok(names.includes(name), `missing export ${name} in [${names}]`);
  }
});

Deno.test("alloc returns 16-byte-aligned blocks that do not overlap", async () => {
  const k = await instantiate();
  const blocks = [1, 16, 17, 100, 4096, 70000, 3].map((bytes) => ({ ptr: k.alloc(bytes), bytes }));
  for (const { ptr } of blocks) {
    assert.ok(ptr > 0);
    assert.equal(ptr % 16, 0);
  }
  const sorted = blocks.toSorted((a, b) => a.ptr - b.ptr);
  for (let i = 1; i < sorted.length; i++) {
    assert.ok(sorted[i - 1].ptr + sorted[i - 1].bytes <= sorted[i].ptr);
  }
});

Deno.test("alloc grows memory and reuses freed blocks of the same class", async () => {
  const k = await instantiate();
  const pagesBefore = k.memory.buffer.byteLength / 65536;
  const big = k.alloc(5_000_000);
  assert.ok(big > 0);
  assert.ok(k.memory.buffer.byteLength / 65536 > pagesBefore);
  k.free(big, 5_000_000);
  assert.equal(k.alloc(4_500_000), big); // same power-of-two class
  const small = k.alloc(40);
  k.free(small, 40);
  assert.equal(k.alloc(64), small);
});

Deno.test("alloc returns 0 when the request cannot be met", async () => {
  const k = await instantiate();
  assert.equal(k.alloc(0x80000001), 0); // above the largest class (2 GiB)
  assert.equal(k.alloc(-1 >>> 0), 0);
});

Deno.test("free ignores pointers the heap did not hand out", async () => {
  const k = await instantiate();
  const a = k.alloc(64);
  k.free(16, 64); // below the heap: Rust's stack
  k.free(a + 4, 64); // misaligned
  k.free(0, 64);
  const b = k.alloc(64);
  assert.notEqual(b, 16);
  assert.notEqual(b, a + 4);
  assert.notEqual(b, a);
});

Deno.test("lrn_f32 refuses bad sizes, pointers and overlapping buffers", async () => {
  const k = await instantiate();
  const p = k.alloc(1024);
  const shape = [1, 4, 4, 4]; // 64 values, 256 bytes
  assert.equal(k.lrn_f32(p, p + 256, ...shape, 0, 1e-4, 0.75, 1), 1);
  assert.equal(k.lrn_f32(p, p + 256, 65536, 65536, 2, 1, 5, 1e-4, 0.75, 1), 2);
  assert.equal(k.lrn_f32(16, p, ...shape, 5, 1e-4, 0.75, 1), 3); // not from alloc
  assert.equal(k.lrn_f32(p + 2, p + 512, ...shape, 5, 1e-4, 0.75, 1), 3); // misaligned
  assert.equal(k.lrn_f32(p, p + 900, ...shape, 5, 1e-4, 0.75, 1), 3); // runs past the block
  assert.equal(k.lrn_f32(p, p + 128, ...shape, 5, 1e-4, 0.75, 1), 4);
  assert.equal(k.lrn_f32(p, p + 256, ...shape, 5, 1e-4, 0.75, 1), 0);
  assert.equal(k.lrn_f32(p, p + 256, 0, 4, 4, 4, 5, 1e-4, 0.75, 1), 0); // empty
});
