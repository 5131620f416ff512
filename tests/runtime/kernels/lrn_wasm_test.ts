import assert from "node:assert/strict";
import {
  createLrnKernel,
  type LrnDims,
  type LrnKernel,
  type LrnParams,
  lrnReference,
} from "../../../src/runtime/kernels/mod.ts";
import { compareToReference, randomTensor } from "./_lrn_helpers.ts";

const ALEXNET: LrnParams = { size: 5, alpha: 1e-4, beta: 0.75, bias: 1 };

/** Attribute sets: the first three take the beta == 0.75 path, the rest the general one. */
const PARAM_SETS: LrnParams[] = [
  ALEXNET,
  { size: 5, alpha: 1, beta: 0.75, bias: 0.5 }, // large alpha: the sum dominates d
  { size: 3, alpha: 40, beta: 0.75, bias: 2 },
  { size: 5, alpha: 1e-4, beta: 0.5, bias: 1 },
  { size: 5, alpha: 2, beta: 1, bias: 1 },
  { size: 5, alpha: 30, beta: 0.6, bias: 0.1 },
  { size: 3, alpha: 1, beta: 2, bias: 1 },
];

let shared: LrnKernel | undefined;
async function kernel(): Promise<LrnKernel> {
  return shared ??= await createLrnKernel();
}

function volume(dims: LrnDims): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** ReLU-like activations over a wide range: half zeros, rare values up to ~1e3. */
function activations(length: number, seed: number): Float32Array {
  const u = randomTensor(length, seed, -1, 1);
  return u.map((v, i) => (v <= 0 ? 0 : v ** 4 * (i % 97 === 0 ? 1000 : 10)));
}

async function check(x: Float32Array, dims: LrnDims, params: LrnParams): Promise<void> {
  const y = (await kernel()).run(x, dims, params);
  const expected = lrnReference(x, dims, params, new Float64Array(x.length));
  const c = compareToReference(y, expected, dims);
  assert.ok(c.ok, `dims [${dims}], params ${JSON.stringify(params)}: ${c.report}`);
}

for (const dims of [[1, 96, 55, 55], [1, 256, 27, 27], [1, 96, 54, 54]] as LrnDims[]) {
  Deno.test(`lrn kernel matches the reference on [${dims}] for every attribute set`, async () => {
    const x = randomTensor(volume(dims), volume(dims));
    for (const params of PARAM_SETS) await check(x, dims, params);
  });
}

const ODD_SHAPES: [string, LrnDims, Partial<LrnParams>][] = [
  ["C = 1", [1, 1, 7, 9], {}],
  ["C < size", [1, 3, 6, 6], { size: 5 }],
  ["C < half the window", [1, 2, 5, 5], { size: 7 }],
  ["H*W not a multiple of 4", [1, 10, 7, 5], {}],
  ["H*W = 1", [3, 12, 1, 1], {}],
  ["H*W of 1..3 lanes past a full tile", [1, 9, 13, 23], {}],
  ["N = 2", [2, 16, 9, 11], {}],
  ["even size 4 (window 1 below, 2 above)", [1, 11, 6, 7], { size: 4 }],
  ["even size 2", [1, 6, 5, 5], { size: 2 }],
  ["size 1 (only the channel itself)", [1, 8, 5, 7], { size: 1 }],
  ["size 16, the largest summed in blocks", [1, 30, 17, 19], { size: 16 }],
  ["size 17, f64 running sums", [1, 40, 9, 15], { size: 17 }],
  ["size 33 over two tiles with a tail", [1, 70, 13, 23], { size: 33 }],
  ["size 64, even and > C", [2, 40, 5, 7], { size: 64 }],
];

for (const [what, dims, override] of ODD_SHAPES) {
  Deno.test(`lrn kernel matches the reference for ${what}`, async () => {
    const x = randomTensor(volume(dims), 7 + volume(dims));
    for (const params of PARAM_SETS) await check(x, dims, { ...params, ...override });
  });
}

Deno.test("lrn kernel stays within tolerance on wide-range ReLU activations", async () => {
  // A large activation leaving the window must not leave error behind: the case a
  // running f32 sum gets wrong.
  for (const size of [5, 9, 16, 17, 33]) {
    for (const dims of [[1, 96, 27, 27], [1, 64, 7, 9]] as LrnDims[]) {
      const x = activations(volume(dims), size * 31 + dims[1]);
      for (const params of PARAM_SETS) await check(x, dims, { ...params, size });
    }
  }
});

Deno.test("lrn kernel propagates inf and NaN like the reference", async () => {
  for (const size of [5, 4, 40]) {
    const dims: LrnDims = [1, 48, 5, 6];
    const x = randomTensor(volume(dims), 99);
    x[3 * 30 + 4] = Infinity;
    x[20 * 30 + 17] = NaN;
    x[40 * 30 + 29] = -Infinity;
    await check(x, dims, { ...ALEXNET, size });
    await check(x, dims, { size, alpha: 0.5, beta: 0.6, bias: 1 });
  }
});

Deno.test("lrn kernel follows Math.pow for zero and negative denominators", async () => {
  const dims: LrnDims = [1, 9, 3, 5];
  const x = randomTensor(volume(dims), 5);
  x.fill(0, 0, 15); // channel 0 all zeros: d = bias exactly
  for (const beta of [0.75, 0.6, 1, 2, 3, -1]) {
    await check(x, dims, { size: 3, alpha: 0.01, beta, bias: -2 }); // d < 0
    await check(x, dims, { size: 3, alpha: 1, beta, bias: 0 }); // d = 0 where x = 0
  }
});

Deno.test("lrn kernel returns x unchanged for beta = 0", async () => {
  const dims: LrnDims = [1, 6, 3, 3];
  const x = randomTensor(volume(dims), 11);
  assert.deepEqual((await kernel()).run(x, dims, { size: 3, beta: 0 }), x);
});

Deno.test("lrn kernel uses the ONNX defaults for omitted attributes", async () => {
  const dims: LrnDims = [1, 12, 4, 4];
  const x = randomTensor(volume(dims), 12);
  const k = await kernel();
  assert.deepEqual(k.run(x, dims, { size: 5 }), k.run(x, dims, ALEXNET));
});

Deno.test("lrn kernel writes into out, also when out is x", async () => {
  const dims: LrnDims = [1, 20, 6, 7];
  const x = randomTensor(volume(dims), 13);
  const k = await kernel();
  const expected = k.run(x, dims, ALEXNET);
  const out = new Float32Array(x.length);
  assert.equal(k.run(x, dims, ALEXNET, out), out);
  assert.deepEqual(out, expected);
  const inPlace = x.slice();
  assert.equal(k.run(inPlace, dims, ALEXNET, inPlace), inPlace);
  assert.deepEqual(inPlace, expected);
});

Deno.test("lrn kernel gives the same bits across calls and buffer growth", async () => {
  const k = await createLrnKernel();
  const small: LrnDims = [1, 8, 5, 5];
  const big: LrnDims = [2, 96, 55, 55];
  const xs = randomTensor(volume(small), 21);
  const xb = randomTensor(volume(big), 22);
  const first = k.run(xs, small, ALEXNET);
  const bigOut = k.run(xb, big, ALEXNET); // grows the wasm block
  assert.deepEqual(k.run(xs, small, ALEXNET), first);
  assert.deepEqual(k.run(xb, big, ALEXNET), bigOut);
  const c = compareToReference(bigOut, lrnReference(xb, big, ALEXNET), big);
  assert.ok(c.ok, c.report);
});

Deno.test("lrn kernel handles empty tensors without calling into wasm", async () => {
  const k = await kernel();
  assert.equal(k.run(new Float32Array(0), [0, 96, 55, 55], ALEXNET).length, 0);
  assert.equal(k.run(new Float32Array(0), [1, 3, 0, 5], ALEXNET).length, 0);
});

Deno.test("lrn kernel rejects bad arguments with the action first", async () => {
  const k = await kernel();
  const x = new Float32Array(12);
  assert.throws(() => k.run(x, [1, 3, 2, 3], ALEXNET), {
    name: "RangeError",
    message: "Cannot run LRN: x has 12 values but dims [1,3,2,3] need 18",
  });
  assert.throws(() => k.run(x, [1, 3, 2] as unknown as LrnDims, ALEXNET), TypeError);
  assert.throws(() => k.run(x, [1, 3, -2, -2], ALEXNET), RangeError);
  assert.throws(() => k.run(x, [1, 3, 2, 2], { size: 0 }), /size must be an integer >= 1/);
  assert.throws(() => k.run(x, [1, 3, 2, 2], { size: 2.5 }), RangeError);
  assert.throws(() => k.run(x, [1, 3, 2, 2], { size: 3, alpha: NaN }), /alpha must be a finite/);
  assert.throws(() => k.run(x, [1, 3, 2, 2], { size: 3, bias: 1e39 }), /bias must be a finite/);
  assert.throws(() => k.run(x, [1, 3, 2, 2], ALEXNET, new Float32Array(5)), /out has 5 values/);
  assert.throws(
    () => k.run(new Float64Array(12) as unknown as Float32Array, [1, 3, 2, 2], ALEXNET),
    TypeError,
  );
});

Deno.test("createLrnKernel accepts the module as bytes or compiled", async () => {
  const bytes = await Deno.readFile(new URL("../../../wasm/alexnet_kernels.wasm", import.meta.url));
  const dims: LrnDims = [1, 7, 3, 3];
  const x = randomTensor(volume(dims), 3);
  const expected = (await kernel()).run(x, dims, ALEXNET);
  assert.deepEqual((await createLrnKernel({ wasm: bytes })).run(x, dims, ALEXNET), expected);
  const compiled = await WebAssembly.compile(bytes);
  assert.deepEqual((await createLrnKernel({ wasm: compiled })).run(x, dims, ALEXNET), expected);
});

Deno.test("createLrnKernel fetches the module from an http URL as browsers do", async () => {
  const path = new URL("../../../wasm/alexnet_kernels.wasm", import.meta.url);
  const bytes = await Deno.readFile(path);
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (req) =>
      new URL(req.url).pathname === "/wasm/alexnet_kernels.wasm"
        ? new Response(bytes, { headers: { "content-type": "application/wasm" } })
        : new Response("not found", { status: 404 }),
  );
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const dims: LrnDims = [1, 5, 2, 3];
    const x = randomTensor(volume(dims), 8);
    const fetched = await createLrnKernel({ wasm: new URL(`${base}/wasm/alexnet_kernels.wasm`) });
    assert.deepEqual(fetched.run(x, dims, ALEXNET), (await kernel()).run(x, dims, ALEXNET));
    await assert.rejects(createLrnKernel({ wasm: new URL(`${base}/missing.wasm`) }), {
      message: `Cannot load the LRN kernel: ${base}/missing.wasm answered HTTP 404`,
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("createLrnKernel rejects a module without the kernel exports", async () => {
  // (module (memory (export "memory") 1))
  const empty = new Uint8Array([
    0,
    97,
    115,
    109,
    1,
    0,
    0,
    0,
    5,
    3,
    1,
    0,
    1,
    7,
    10,
    1,
    6,
    109,
    101,
    109,
    111,
    114,
    121,
    2,
    0,
  ]);
  await assert.rejects(createLrnKernel({ wasm: empty }), {
    name: "TypeError",
    message: 'Cannot load the LRN kernel: the module has no "alloc" export',
  });
});
