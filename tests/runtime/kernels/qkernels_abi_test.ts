import assert from "node:assert/strict";

// The raw C ABI of the int8 kernels in wasm/alexnet_kernels.wasm, below
// src/runtime/kernels/qlinear_wasm.ts and qconv_wasm.ts.
interface Exports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  free(ptr: number, bytes: number): void;
  alloc_static(bytes: number): number;
  quantize_u8(...args: number[]): number;
  qgemm_packed_bytes(m: number, k: number): number;
  qgemm_pack(...args: number[]): number;
  qlinear_f32(...args: number[]): number;
  qlinear_acc_u8(...args: number[]): number;
  qconv_f32(...args: number[]): number;
  qconv_acc_u8(...args: number[]): number;
  qlinear16_f32(...args: number[]): number;
  qlinear16_acc(...args: number[]): number;
  qconv16_f32(...args: number[]): number;
}

const OK = 0, BAD_SHAPE = 2, BAD_POINTER = 3, OVERLAP = 4, BAD_ZERO_POINT = 5;

async function instantiate(): Promise<Exports> {
  const bytes = await Deno.readFile(new URL("../../../wasm/alexnet_kernels.wasm", import.meta.url));
  const { instance } = await WebAssembly.instantiate(bytes, {});
  return instance.exports as unknown as Exports;
}

Deno.test("alexnet_kernels.wasm exports the int8 kernels", async () => {
  const bytes = await Deno.readFile(new URL("../../../wasm/alexnet_kernels.wasm", import.meta.url));
  const names = WebAssembly.Module.exports(await WebAssembly.compile(bytes)).map((e) => e.name);
  for (
    const name of [
      "alloc_static",
      "quantize_u8",
      "qgemm_packed_bytes",
      "qgemm_pack",
      "qlinear_f32",
      "qlinear_acc_u8",
      "qconv_f32",
      "qconv_acc_u8",
      "qlinear16_f32",
      "qlinear16_acc",
      "qconv16_f32",
    ]
  ) {
    assert.ok(names.includes(name), `missing export ${name} in [${names}]`);
  }
});

Deno.test("alloc_static hands out exact 16-aligned blocks one after the other", async () => {
  const k = await instantiate();
  const a = k.alloc_static(37_748_736); // fc6: 4096 * 9216, not rounded to 64 MiB
  const b = k.alloc_static(1);
  const c = k.alloc_static(17);
  const d = k.alloc_static(0);
  assert.ok(a > 0 && a % 16 === 0);
  assert.deepEqual([b - a, c - b, d - c], [37_748_736, 16, 32]);
  assert.ok(k.memory.buffer.byteLength < a + 37_748_736 + 2 * 65536);
  assert.equal(k.alloc_static(0x80000001), 0);
});

Deno.test("qgemm_packed_bytes pads K to 16 and M to 4, and refuses unusable shapes", async () => {
  const k = await instantiate();
  assert.equal(k.qgemm_packed_bytes(4096, 9216), 4096 * 9216);
  assert.equal(k.qgemm_packed_bytes(1, 1), 4 * 16);
  assert.equal(k.qgemm_packed_bytes(5, 17), 8 * 32);
  assert.equal(k.qgemm_packed_bytes(0, 16), 0);
  assert.equal(k.qgemm_packed_bytes(4, 0), 0);
  assert.equal(k.qgemm_packed_bytes(4, 65537), 0);
  assert.equal(k.qgemm_packed_bytes(4, 65536), 4 * 65536);
});

Deno.test("qgemm_pack refuses rows outside the matrix, foreign pointers and overlap", async () => {
  const k = await instantiate();
  const packed = k.alloc_static(k.qgemm_packed_bytes(6, 20));
  const src = k.alloc(6 * 20);
  assert.equal(k.qgemm_pack(packed, src, 6, 20, 0, 6), OK);
  assert.equal(k.qgemm_pack(packed, src, 6, 20, 4, 3), BAD_SHAPE);
  assert.equal(k.qgemm_pack(packed, src, 6, 0, 0, 1), BAD_SHAPE);
  assert.equal(k.qgemm_pack(16, src, 6, 20, 0, 6), BAD_POINTER); // Rust's stack, not the heap
  assert.equal(k.qgemm_pack(packed, 0, 6, 20, 0, 6), BAD_POINTER);
  assert.equal(k.qgemm_pack(packed, packed + 8, 6, 20, 0, 2), OVERLAP);
});

Deno.test("qlinear_f32 and qlinear_acc_u8 check zero points, shapes, pointers and overlap", async () => {
  const k = await instantiate();
  const [m, kk, n] = [4, 16, 2];
  const packed = k.alloc_static(k.qgemm_packed_bytes(m, kk));
  const w = k.alloc(m * kk);
  assert.equal(k.qgemm_pack(packed, w, m, kk, 0, m), OK);
  const scales = k.alloc(16);
  const x = k.alloc(n * kk * 4);
  const y = k.alloc(n * m * 4);
  const call = (over: Partial<Record<string, number>>) => {
    const a = { x, y, n, packed, m, k: kk, scales, bias: 0, sx: 0.1, z: 0, relu: 0, ...over };
    return k.qlinear_f32(a.x, a.y, a.n, a.packed, a.m, a.k, a.scales, a.bias, a.sx, a.z, a.relu);
  };
  assert.equal(call({}), OK);
  assert.equal(call({ bias: scales }), OK);
  assert.equal(call({ n: 0, x: 0, y: 0 }), OK);
  assert.equal(call({ z: 256 }), BAD_ZERO_POINT);
  assert.equal(call({ k: 65537 }), BAD_SHAPE);
  assert.equal(call({ m: 0 }), BAD_SHAPE);
  assert.equal(call({ y: y + 2 }), BAD_POINTER); // misaligned
  assert.equal(call({ n: 100_000 }), BAD_POINTER); // x runs past the heap
  assert.equal(call({ y: x }), OVERLAP);
  assert.equal(call({ y: scales }), OVERLAP);
  assert.equal(call({ scales: 0 }), BAD_POINTER);
  assert.equal(k.qlinear_acc_u8(x, y, n, packed, m, kk, 300), BAD_ZERO_POINT);
  assert.equal(k.qlinear_acc_u8(x, x, n, packed, m, kk, 3), OVERLAP);
  assert.equal(k.qlinear_acc_u8(x, y, n, packed, m, kk, 3), OK);
});

Deno.test("quantize_u8 checks its zero point, pointers and overlap", async () => {
  const k = await instantiate();
  const x = k.alloc(64);
  const q = k.alloc(16);
  assert.equal(k.quantize_u8(x, q, 16, 0.5, 3), OK);
  assert.equal(k.quantize_u8(x, q, 16, 0.5, 256), BAD_ZERO_POINT);
  assert.equal(k.quantize_u8(x, x + 8, 16, 0.5, 3), OVERLAP);
  assert.equal(k.quantize_u8(x + 2, q, 16, 0.5, 3), BAD_POINTER);
  assert.equal(k.quantize_u8(0, 0, 0, 0.5, 3), OK);
});

Deno.test("qconv_f32 and qconv_acc_u8 refuse unusable geometries", async () => {
  const k = await instantiate();
  const geometry = k.alloc(64);
  const words = (v: number[]) => new Uint32Array(k.memory.buffer, geometry, 16).set(v);
  // [n, c, h, w, m, group, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw]
  const good = [1, 4, 5, 5, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1];
  const packed = k.alloc_static(2 * k.qgemm_packed_bytes(2, 18));
  const x = k.alloc(4 * 25 * 4);
  const y = k.alloc(4 * 25 * 4);
  const scales = k.alloc(16);
  const run = (v: number[]) => {
    words(v);
    return k.qconv_f32(x, y, geometry, packed, scales, 0, 0.1, 0, 1);
  };
  assert.equal(run(good), OK);
  assert.equal(run(good.with(5, 3)), BAD_SHAPE); // C % group
  assert.equal(run(good.with(4, 3)), BAD_SHAPE); // M % group
  assert.equal(run(good.with(8, 0)), BAD_SHAPE); // stride 0
  assert.equal(run(good.with(6, 9)), BAD_SHAPE); // kernel taller than the padded input
  assert.equal(run(good.with(0, 100_000)), BAD_POINTER); // x runs past the heap
  words(good);
  assert.equal(k.qconv_f32(x, x, geometry, packed, scales, 0, 0.1, 0, 1), OVERLAP);
  assert.equal(k.qconv_acc_u8(x, y, geometry, packed, 256), BAD_ZERO_POINT);
  assert.equal(k.qconv_acc_u8(x, y, geometry, packed, 255), OK);
});

Deno.test("qlinear16_f32, qlinear16_acc and qconv16_f32 check shapes, pointers and overlap", async () => {
  const k = await instantiate();
  const [m, kk, n] = [4, 16, 2];
  const packed = k.alloc_static(k.qgemm_packed_bytes(m, kk));
  assert.equal(k.qgemm_pack(packed, k.alloc(m * kk), m, kk, 0, m), OK);
  const scales = k.alloc(16);
  const x = k.alloc(n * kk * 4);
  const y = k.alloc(n * m * 8);
  const call = (over: Partial<Record<string, number>>) => {
    const a = { x, y, n, packed, m, k: kk, scales, bias: 0, relu: 1, ...over };
    return k.qlinear16_f32(a.x, a.y, a.n, a.packed, a.m, a.k, a.scales, a.bias, a.relu);
  };
  assert.equal(call({}), OK);
  assert.equal(call({ bias: scales }), OK);
  assert.equal(call({ n: 0, x: 0, y: 0 }), OK);
  assert.equal(call({ k: 65537 }), BAD_SHAPE);
  assert.equal(call({ m: 0 }), BAD_SHAPE);
  assert.equal(call({ y: y + 2 }), BAD_POINTER); // misaligned
  assert.equal(call({ n: 100_000 }), BAD_POINTER); // x runs past the heap
  assert.equal(call({ y: x }), OVERLAP);
  assert.equal(call({ y: scales }), OVERLAP);
  assert.equal(call({ scales: 0 }), BAD_POINTER);
  // acc: [n, m] f64, 8-aligned; xq: [n, k] i16.
  assert.equal(k.qlinear16_acc(x, y, n, packed, m, kk), OK);
  assert.equal(k.qlinear16_acc(x, y + 4, n, packed, m, kk), BAD_POINTER);
  assert.equal(k.qlinear16_acc(x + 1, y, n, packed, m, kk), BAD_POINTER);
  assert.equal(k.qlinear16_acc(x, x, n, packed, m, kk), OVERLAP);
  assert.equal(k.qlinear16_acc(x, y, n, packed, m, 0), BAD_SHAPE);

  const geometry = k.alloc(64);
  const words = (v: number[]) => new Uint32Array(k.memory.buffer, geometry, 16).set(v);
  // [n, c, h, w, m, group, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw]
  const good = [1, 4, 5, 5, 4, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1];
  const cPacked = k.alloc_static(2 * k.qgemm_packed_bytes(2, 18));
  const cx = k.alloc(4 * 25 * 4);
  const cy = k.alloc(4 * 25 * 4);
  const run = (v: number[], xPtr = cx, yPtr = cy) => {
    words(v);
    return k.qconv16_f32(xPtr, yPtr, geometry, cPacked, scales, 0, 1);
  };
  assert.equal(run(good), OK);
  assert.equal(run(good.with(5, 3)), BAD_SHAPE); // C % group
  assert.equal(run(good.with(6, 9)), BAD_SHAPE); // kernel taller than the padded input
  assert.equal(run(good.with(0, 100_000)), BAD_POINTER); // x runs past the heap
  assert.equal(run(good, cx, cx), OVERLAP);
  assert.equal(run(good.with(0, 0)), OK); // no images
});
