import assert from "node:assert/strict";
import * as ort from "onnxruntime-web";
import { createApp, type ServerState } from "../../src/api/mod.ts";
import type { Classifier } from "../../src/classify/mod.ts";
import { loadClassifier } from "../../src/classify/load.ts";
import { ensureSyntheticModel } from "../../src/model/store.ts";
import { mulberry32 } from "../../src/graph/weights.ts";
import { buildTinyModel, fixture, syntheticClassifier, writeTinyModel } from "../_helpers.ts";

const t = { sanitizeOps: false, sanitizeResources: false };
const MODEL = "alexnet-synthetic";
const INFER = `/v2/models/${MODEL}/infer`;
const ITEM = 3 * 224 * 224;

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** x: [n, 3, 224, 224] of seeded values around a mean-subtracted image's range. */
function randomTensor(n: number, seed = 3): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length: n * ITEM }, () => random() * 255 - 120);
}

/** Little-endian bytes of FP32 values, written element by element (not by the server's helper). */
function float32Bytes(values: Float32Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

/** BYTES elements with their 4-byte little-endian length prefixes. */
function bytesElements(elements: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(elements.reduce((n, e) => n + 4 + e.length, 0));
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const e of elements) {
    view.setUint32(offset, e.length, true);
    out.set(e, offset + 4);
    offset += 4 + e.length;
  }
  return out;
}

/** A request with the binary tensor data extension: JSON header, then `parts`. */
function binaryRequest(header: unknown, parts: Uint8Array[], headerLength?: number): RequestInit {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const body = new Uint8Array(json.length + parts.reduce((n, p) => n + p.length, 0));
  body.set(json);
  let offset = json.length;
  for (const p of parts) {
    body.set(p, offset);
    offset += p.length;
  }
  return {
    method: "POST",
    headers: {
      "content-type": "application/octet-stream",
      "inference-header-content-length": String(headerLength ?? json.length),
    },
    body,
  };
}

const jsonRequest = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

/** Splits a binary answer into its JSON header and the FP32 values after it. */
async function readBinaryAnswer(res: Response) {
  assert.equal(res.headers.get("content-type"), "application/octet-stream");
  const length = Number(res.headers.get("inference-header-content-length"));
  const body = new Uint8Array(await res.arrayBuffer());
  const header = JSON.parse(new TextDecoder().decode(body.subarray(0, length)));
  const rest = body.slice(length);
  const view = new DataView(rest.buffer);
  const values = Float32Array.from(
    { length: rest.length / 4 },
    (_, i) => view.getFloat32(i * 4, true),
  );
  return { header, values, rest: rest.length };
}

/** An onnxruntime-web session of its own on the synthetic model's file. */
let direct: Promise<ort.InferenceSession> | undefined;
function directSession(): Promise<ort.InferenceSession> {
  direct ??= (async () => {
    await syntheticClassifier(); // Generates the file if missing; configures ort.env.
    const manifest = await ensureSyntheticModel(1);
    const bytes = await Deno.readFile(new URL(`${MODEL}.onnx`, manifest));
    return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  })();
  return direct;
}

/** y: [n, 1000] from the direct session, one item at a time. */
async function directRun(x: Float32Array, n: number): Promise<Float32Array> {
  const session = await directSession();
  const out = new Float32Array(n * 1000);
  for (let i = 0; i < n; i++) {
    const feeds = {
      data_0: new ort.Tensor("float32", x.slice(i * ITEM, (i + 1) * ITEM), [1, 3, 224, 224]),
    };
    const result = await session.run(feeds);
    out.set(result.softmaxout_1.data as Float32Array, i * 1000);
  }
  return out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths");
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

async function syntheticApp(maxBodyBytes?: number) {
  const state: ServerState = { classifier: await syntheticClassifier() };
  return createApp(state, { maxBodyBytes });
}

Deno.test({
  name: "v2 metadata and health describe the server and the served model",
  ...t,
  async fn() {
    const app = await syntheticApp();
    assert.deepEqual(await (await app.request("/v2")).json(), {
      name: "alexnet-edge",
      version: "0.1.0",
      extensions: ["binary_tensor_data"],
    });
    const live = await app.request("/v2/health/live");
    assert.equal(live.status, 200);
    assert.deepEqual(await live.json(), { live: true });
    assert.deepEqual(await (await app.request("/v2/health/ready")).json(), { ready: true });
    const expected = {
      name: MODEL,
      versions: ["1"],
      platform: "onnxruntime_onnx",
      inputs: [{ name: "data_0", datatype: "FP32", shape: [-1, 3, 224, 224] }],
      outputs: [{ name: "softmaxout_1", datatype: "FP32", shape: [-1, 1000] }],
    };
    for (const path of [`/v2/models/${MODEL}`, `/v2/models/${MODEL}/versions/1`]) {
      const res = await app.request(path);
      assert.equal(res.status, 200, path);
      assert.deepEqual(await res.json(), expected, path);
    }
    for (const path of [`/v2/models/${MODEL}/ready`, `/v2/models/${MODEL}/versions/1/ready`]) {
      assert.deepEqual(await (await app.request(path)).json(), { name: MODEL, ready: true });
    }
  },
});

Deno.test({
  name: "infer with a JSON FP32 tensor answers the raw output of a direct onnxruntime session",
  ...t,
  async fn() {
    const app = await syntheticApp();
    const x = randomTensor(1);
    const res = await app.request(
      INFER,
      jsonRequest({
        id: "req-7",
        inputs: [{
          name: "data_0",
          datatype: "FP32",
          shape: [1, 3, 224, 224],
          data: Array.from(x),
        }],
      }),
    );
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /application\/json/);
    const body = await res.json();
    assert.equal(body.model_name, MODEL);
    assert.equal(body.model_version, "1");
    assert.equal(body.id, "req-7");
    assert.equal(body.outputs.length, 1);
    const [out] = body.outputs;
    assert.equal(out.name, "softmaxout_1");
    assert.equal(out.datatype, "FP32");
    assert.deepEqual(out.shape, [1, 1000]);
    const diff = maxDiff(out.data, await directRun(x, 1));
    assert.ok(diff <= 1e-6, `max |diff| ${diff}`);
  },
});

Deno.test({
  name: "infer takes nested JSON data and a versioned path the same as flat data",
  ...t,
  async fn() {
    const app = await syntheticApp();
    const x = randomTensor(1, 11);
    const flat = await (await app.request(
      INFER,
      jsonRequest({
        inputs: [{
          name: "data_0",
          datatype: "FP32",
          shape: [1, 3, 224, 224],
          data: Array.from(x),
        }],
      }),
    )).json();
    // data: [1][3][224][224]
    const nested = [
      Array.from(
        { length: 3 },
        (_, c) =>
          Array.from(
            { length: 224 },
            (_, h) => Array.from(x.subarray((c * 224 + h) * 224, (c * 224 + h + 1) * 224)),
          ),
      ),
    ];
    const res = await app.request(
      `/v2/models/${MODEL}/versions/1/infer`,
      jsonRequest({
        inputs: [{ name: "data_0", datatype: "FP32", shape: [1, 3, 224, 224], data: nested }],
      }),
    );
    assert.equal(res.status, 200);
    assert.deepEqual((await res.json()).outputs, flat.outputs);
  },
});

Deno.test({
  name: "infer with binary FP32 tensors, both ways, matches the direct session for a batch of 2",
  ...t,
  async fn() {
    const app = await syntheticApp();
    const x = randomTensor(2, 5);
    const expected = await directRun(x, 2);
    const input = {
      name: "data_0",
      datatype: "FP32",
      shape: [2, 3, 224, 224],
      parameters: { binary_data_size: x.length * 4 },
    };
    // Binary in, binary out (binary_data_output).
    const both = await app.request(
      INFER,
      binaryRequest({ inputs: [input], parameters: { binary_data_output: true } }, [
        float32Bytes(x),
      ]),
    );
    assert.equal(both.status, 200);
    const { header, values, rest } = await readBinaryAnswer(both);
    assert.equal(rest, 2 * 1000 * 4);
    assert.deepEqual(header.outputs, [{
      name: "softmaxout_1",
      datatype: "FP32",
      shape: [2, 1000],
      parameters: { binary_data_size: 8000 },
    }]);
    let diff = maxDiff(values, expected);
    assert.ok(diff <= 1e-6, `binary out: max |diff| ${diff}`);
    // Binary in, JSON out.
    const jsonOut = await app.request(INFER, binaryRequest({ inputs: [input] }, [float32Bytes(x)]));
    assert.match(jsonOut.headers.get("content-type")!, /application\/json/);
    const body = await jsonOut.json();
    assert.deepEqual(body.outputs[0].shape, [2, 1000]);
    diff = maxDiff(body.outputs[0].data, expected);
    assert.ok(diff <= 1e-6, `JSON out: max |diff| ${diff}`);
    // JSON in, binary out asked per output (binary_data overrides binary_data_output).
    const perOutput = await app.request(
      INFER,
      jsonRequest({
        parameters: { binary_data_output: false },
        inputs: [{
          name: "data_0",
          datatype: "FP32",
          shape: [1, 3, 224, 224],
          data: Array.from(x.subarray(0, ITEM)),
        }],
        outputs: [{ name: "softmaxout_1", parameters: { binary_data: true } }],
      }),
    );
    const one = await readBinaryAnswer(perOutput);
    diff = maxDiff(one.values, expected.subarray(0, 1000));
    assert.ok(diff <= 1e-6, `per-output binary: max |diff| ${diff}`);
  },
});

Deno.test({
  name: "infer with a BYTES image gives the top-1 and score of /predict on the same file",
  ...t,
  async fn() {
    const app = await syntheticApp();
    const files = [await fixture("chelsea.jpg"), await fixture("rocket.jpg")];
    const predicted: { index: number; score: number }[] = [];
    for (const bytes of files) {
      const res = await app.request("/predict?top_k=1", { method: "POST", body: bytes });
      assert.equal(res.status, 200);
      predicted.push((await res.json()).predictions[0]);
    }
    const check = (rows: ArrayLike<number>, what: string) => {
      for (const [i, p] of predicted.entries()) {
        const row = Array.from(rows).slice(i * 1000, (i + 1) * 1000);
        assert.equal(argmax(row), p.index, `${what}, image ${i}`);
        assert.ok(Math.abs(row[p.index] - p.score) <= 1e-6, `${what}, image ${i} score`);
      }
    };
    // Base64 strings in JSON, shape [2].
    const json = await app.request(
      INFER,
      jsonRequest({
        inputs: [{ name: "data_0", datatype: "BYTES", shape: [2], data: files.map(base64) }],
      }),
    );
    assert.equal(json.status, 200);
    const body = await json.json();
    assert.deepEqual(body.outputs[0].shape, [2, 1000]);
    check(body.outputs[0].data, "JSON base64");
    // Length-prefixed binary elements, shape [2, 1], binary answer.
    const elements = bytesElements(files);
    const binary = await app.request(
      INFER,
      binaryRequest({
        inputs: [{
          name: "data_0",
          datatype: "BYTES",
          shape: [2, 1],
          parameters: { binary_data_size: elements.length },
        }],
        outputs: [{ name: "softmaxout_1", parameters: { binary_data: true } }],
      }, [elements]),
    );
    assert.equal(binary.status, 200);
    check((await readBinaryAnswer(binary)).values, "binary BYTES");
  },
});

Deno.test({
  name: "infer answers a logits model's raw logits, not probabilities",
  ...t,
  async fn() {
    const classifier = await loadClassifier(await writeTinyModel(64, 48));
    const app = createApp({ classifier });
    const x = Float32Array.from({ length: 3 * 48 * 64 }, (_, i) => ((i * 37) % 255) - 120);
    const res = await app.request(
      "/v2/models/tiny-user-model/infer",
      jsonRequest({
        inputs: [{ name: "pixels", datatype: "FP32", shape: [1, 3, 48, 64], data: Array.from(x) }],
      }),
    );
    assert.equal(res.status, 200);
    const [out] = (await res.json()).outputs;
    assert.equal(out.name, "logits");
    const session = await ort.InferenceSession.create(buildTinyModel(64, 48));
    const direct = await session.run({ pixels: new ort.Tensor("float32", x, [1, 3, 48, 64]) });
    assert.ok(maxDiff(out.data, direct.logits.data as Float32Array) <= 1e-6);
    const sum = out.data.reduce((a: number, b: number) => a + b, 0);
    assert.ok(Math.abs(sum - 1) > 1e-3, `logits, not probabilities (sum ${sum})`);
  },
});

/** Asserts a protocol error: the status and `{ "error": "<message>" }` alone. */
async function expectError(res: Response, status: number, what: string, pattern?: RegExp) {
  const text = await res.text();
  assert.equal(res.status, status, `${what}: ${text}`);
  const body = JSON.parse(text);
  assert.deepEqual(Object.keys(body), ["error"], what);
  assert.equal(typeof body.error, "string", what);
  assert.doesNotMatch(body.error, /\/work|at .*\.ts:\d+|Error:/, `${what}: no paths or stacks`);
  if (pattern) assert.match(body.error, pattern, what);
}

Deno.test({
  name: "malformed infer requests get protocol errors with 4xx statuses, never 500",
  ...t,
  async fn() {
    const LIMIT = 4 * 1024 * 1024;
    const app = await syntheticApp(LIMIT);
    const x = randomTensor(1);
    const data = Array.from(x);
    const fp32 = (extra: Record<string, unknown> = {}) => ({
      name: "data_0",
      datatype: "FP32",
      shape: [1, 3, 224, 224],
      ...extra,
    });
    const bin = { parameters: { binary_data_size: ITEM * 4 } };
    const jpeg = await fixture("chelsea.jpg");
    const cases: [string, RequestInit, number, RegExp?][] = [
      [
        "wrong shape",
        jsonRequest({ inputs: [fp32({ shape: [1, 3, 224, 225], data })] }),
        400,
        /shape/,
      ],
      ["3-d shape", jsonRequest({ inputs: [fp32({ shape: [3, 224, 224], data })] }), 400, /shape/],
      ["batch of 0", jsonRequest({ inputs: [fp32({ shape: [0, 3, 224, 224], data: [] })] }), 400],
      [
        "data shorter than shape",
        jsonRequest({ inputs: [fp32({ data: data.slice(1) })] }),
        400,
        /elements/,
      ],
      [
        // Counted as they stream in: more strings than --max-batch is refused before parsing.
        "strings as FP32",
        jsonRequest({ inputs: [fp32({ data: data.map(String) })] }),
        413,
        /more than 16 strings.*FP32 data are numbers/,
      ],
      [
        "a few strings as FP32",
        jsonRequest({ inputs: [fp32({ data: [...data.slice(0, -2), "1", "2"] })] }),
        400,
        /data\[150526\] is not a number/,
      ],
      ["nested too deep", jsonRequest({ inputs: [fp32({ shape: [1], data: [[1]] })] }), 400],
      [
        "unsupported datatype",
        jsonRequest({ inputs: [fp32({ datatype: "FP64", data: [0] })] }),
        400,
        /FP64/,
      ],
      [
        "INT32 datatype",
        jsonRequest({ inputs: [fp32({ datatype: "INT32", data: [0] })] }),
        400,
        /INT32/,
      ],
      [
        "unknown datatype",
        jsonRequest({ inputs: [fp32({ datatype: "FLOAT", data: [0] })] }),
        400,
        /datatype/,
      ],
      [
        "negative dimension",
        jsonRequest({ inputs: [fp32({ shape: [-1, 3, 224, 224], data: [0] })] }),
        400,
      ],
      ["no inputs", jsonRequest({ inputs: [] }), 400, /inputs/],
      ["not an object", jsonRequest([1, 2]), 400],
      ["not JSON", { method: "POST", body: "{inputs:" }, 400, /JSON/],
      ["empty body", { method: "POST" }, 400],
      ["unknown input", jsonRequest({ inputs: [fp32({ name: "x", data: [0] })] }), 400, /"x"/],
      [
        "two inputs",
        jsonRequest({ inputs: [fp32({ data: [0] }), fp32({ data: [0] })] }),
        400,
        /one input/,
      ],
      [
        "unknown output",
        jsonRequest({ inputs: [fp32({ data: [0] })], outputs: [{ name: "prob" }] }),
        400,
        /"prob"/,
      ],
      ["neither data nor binary", jsonRequest({ inputs: [fp32()] }), 400, /neither/],
      [
        "data and binary",
        binaryRequest({ inputs: [fp32({ data, ...bin })] }, [float32Bytes(x)]),
        400,
        /both/,
      ],
      [
        "truncated binary part",
        binaryRequest({ inputs: [fp32(bin)] }, [float32Bytes(x).subarray(0, 1000)]),
        400,
        /truncated/,
      ],
      ["binary without the header length", {
        ...binaryRequest({ inputs: [fp32(bin)] }, [float32Bytes(x)]),
        headers: {},
      }, 400],
      [
        "header length past the body",
        binaryRequest({ inputs: [fp32(bin)] }, [], 99999),
        400,
        /Inference-Header-Content-Length/,
      ],
      [
        "header length not a number",
        {
          ...binaryRequest({ inputs: [fp32(bin)] }, [float32Bytes(x)]),
          headers: { "inference-header-content-length": "12abc" },
        },
        400,
        /Inference-Header-Content-Length/,
      ],
      [
        "header length cutting the JSON",
        binaryRequest({ inputs: [fp32(bin)] }, [float32Bytes(x)], 10),
        400,
      ],
      [
        "binary size not the shape's",
        binaryRequest({ inputs: [fp32({ parameters: { binary_data_size: 400 } })] }, [
          new Uint8Array(400),
        ]),
        400,
        /bytes/,
      ],
      [
        "bytes after the binary data",
        binaryRequest({ inputs: [fp32(bin)] }, [float32Bytes(x), new Uint8Array(8)]),
        400,
        /follow/,
      ],
      [
        "BYTES of a bad shape",
        jsonRequest({
          inputs: [{ name: "data_0", datatype: "BYTES", shape: [1, 2], data: ["aa", "bb"] }],
        }),
        400,
        /shape/,
      ],
      [
        "BYTES count off",
        jsonRequest({
          inputs: [{ name: "data_0", datatype: "BYTES", shape: [2], data: [base64(jpeg)] }],
        }),
        400,
      ],
      [
        "BYTES not base64",
        jsonRequest({ inputs: [{ name: "data_0", datatype: "BYTES", shape: [1], data: ["***"] }] }),
        400,
        /base64/,
      ],
      [
        "BYTES numbers",
        jsonRequest({ inputs: [{ name: "data_0", datatype: "BYTES", shape: [1], data: [5] }] }),
        400,
        /string/,
      ],
      [
        "BYTES truncated length prefix",
        binaryRequest({
          inputs: [{
            name: "data_0",
            datatype: "BYTES",
            shape: [1],
            parameters: { binary_data_size: 6 },
          }],
        }, [new Uint8Array([200, 0, 0, 0, 1, 2])]),
        400,
        /truncated/,
      ],
      [
        "BYTES empty element",
        binaryRequest({
          inputs: [{
            name: "data_0",
            datatype: "BYTES",
            shape: [1],
            parameters: { binary_data_size: 4 },
          }],
        }, [new Uint8Array(4)]),
        400,
        /empty/,
      ],
      [
        "BYTES not an image",
        jsonRequest({
          inputs: [{
            name: "data_0",
            datatype: "BYTES",
            shape: [1],
            data: [btoa("hello, not an image")],
          }],
        }),
        415,
      ],
      [
        "BYTES truncated JPEG",
        jsonRequest({
          inputs: [{
            name: "data_0",
            datatype: "BYTES",
            shape: [1],
            data: [base64(jpeg.subarray(0, 600))],
          }],
        }),
        422,
      ],
      [
        "body over the limit",
        binaryRequest({
          inputs: [
            fp32({ shape: [8, 3, 224, 224], parameters: { binary_data_size: 8 * ITEM * 4 } }),
          ],
        }, [new Uint8Array(8 * ITEM * 4)]),
        413,
      ],
    ];
    for (const [what, init, status, pattern] of cases) {
      await expectError(await app.request(INFER, init), status, what, pattern);
    }
    // Unknown model, version, route: 404 in the protocol's shape.
    const ok = jsonRequest({ inputs: [fp32({ data })] });
    await expectError(
      await app.request("/v2/models/resnet/infer", ok),
      404,
      "unknown model",
      /resnet/,
    );
    await expectError(
      await app.request(`/v2/models/${MODEL}/versions/2/infer`, ok),
      404,
      "unknown version",
    );
    await expectError(await app.request("/v2/models/resnet"), 404, "unknown model metadata");
    await expectError(await app.request("/v2/models/resnet/ready"), 404, "unknown model ready");
    await expectError(await app.request(`/v2/models/${MODEL}/stats`), 404, "unknown route");
    await expectError(await app.request(INFER), 404, "GET on infer");
    // The same request, well formed, still works after all of that.
    assert.equal((await app.request(INFER, ok)).status, 200);
  },
});

Deno.test({
  name: "v2 answers 503 in the protocol's shape until the model is ready",
  ...t,
  async fn() {
    const state: ServerState = {};
    const app = createApp(state);
    assert.equal((await app.request("/v2/health/live")).status, 200);
    for (const path of ["/v2/health/ready", `/v2/models/${MODEL}`, `/v2/models/${MODEL}/ready`]) {
      await expectError(await app.request(path), 503, path, /loading/);
    }
    await expectError(await app.request(INFER, jsonRequest({ inputs: [] })), 503, "infer");
    state.classifier = await syntheticClassifier();
    assert.equal((await app.request("/v2/health/ready")).status, 200);
  },
});

Deno.test({
  name: "v2 requests are counted by route pattern in the metrics",
  ...t,
  async fn() {
    const app = await syntheticApp();
    await app.request(`/v2/models/${MODEL}`);
    await app.request("/v2/nope");
    const text = await (await app.request("/metrics")).text();
    assert.match(
      text,
      /alexnet_edge_http_requests_total\{route="\/v2\/models\/:name",status="200"\} 1/,
    );
    assert.match(text, /alexnet_edge_http_requests_total\{route="not_found",status="404"\} 1/);
  },
});

Deno.test({
  name: "BYTES images are held to the server's pixel limit, as /predict's are",
  ...t,
  async fn() {
    const app = createApp({ classifier: await syntheticClassifier() }, { maxPixels: 10_000 });
    const res = await app.request(
      INFER,
      jsonRequest({
        inputs: [{
          name: "data_0",
          datatype: "BYTES",
          shape: [1],
          data: [base64(await fixture("chelsea.jpg"))],
        }],
      }),
    );
    await expectError(res, 422, "over the pixel limit", /megapixel/);
  },
});

Deno.test({
  name: "a full inference queue answers 503 with Retry-After in the protocol's shape, counted",
  ...t,
  async fn() {
    const real = await syntheticClassifier();
    const full = Object.assign(new RangeError("Cannot queue the task"), { name: "QueueFullError" });
    const busy = {
      info: real.info,
      classes: real.classes,
      queueDepth: 32,
      inferRaw: () => Promise.reject(full),
    } as unknown as Classifier;
    const app = createApp({ classifier: busy });
    const res = await app.request(
      INFER,
      jsonRequest({
        inputs: [{
          name: "data_0",
          datatype: "FP32",
          shape: [1, 3, 224, 224],
          data: Array(ITEM).fill(0),
        }],
      }),
    );
    assert.equal(res.headers.get("retry-after"), "1");
    await expectError(res, 503, "queue full", /queue is full/);
    const metrics = await (await app.request("/metrics")).text();
    assert.match(metrics, /alexnet_edge_queue_rejections_total 1/);
  },
});
