/**
 * Where the fp32 session's memory goes: peak and current RSS of a fresh process
 * after reading the model, after creating one onnxruntime-web session, and after
 * 5 runs, for each way of handing onnxruntime-web the model. One child process
 * per mode (VmHWM is per process).
 *
 *   deno run -A bench/session_memory.ts [--model models/alexnet-synthetic.onnx]
 *
 * Modes:
 * - `bytes`: the model bytes as they are (what src/runtime/wasm.ts did before);
 * - `external-copy`: large initializers moved to one separate weights buffer;
 * - `external-view`: large initializers as external data pointing back into the
 *   model's own bytes (no copy; what wasm.ts does now);
 * - `external-view-release`: the same, then the model's buffer detached
 *   (`releaseModel`, what the server does);
 * - `no-prepack`: the bytes as they are, `session.disable_prepacking = 1`.
 */
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-web";
import { decodeModel, onnx } from "../src/graph/onnx.ts";

const MODES = ["bytes", "external-copy", "external-view", "external-view-release", "no-prepack"];
const { values } = parseArgs({
  args: Deno.args,
  options: { model: { type: "string" }, mode: { type: "string" } },
});
const modelPath = values.model ?? "models/alexnet-synthetic.onnx";

if (!values.mode) {
  console.log(
    "| mode | RSS after read | peak after session | RSS after session | RSS after 5 runs | ms/run |",
  );
  console.log("|---|---|---|---|---|---|");
  for (const mode of MODES) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", import.meta.filename!, "--mode", mode, "--model", modelPath],
      stderr: "inherit",
    }).output();
    console.log(new TextDecoder().decode(out.stdout).trim());
  }
  Deno.exit(0);
}

const mb = (key: string) =>
  `${
    (Number(new RegExp(`${key}:\\s+(\\d+)`).exec(Deno.readTextFileSync("/proc/self/status"))![1]) /
      1024).toFixed(0)
  } MB`;
const mode = values.mode;
ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";
// A buffer of the file's size (Deno.readFile would peak at twice the model).
const file = await Deno.open(modelPath);
const bytes = new Uint8Array((await file.stat()).size);
for (let at = 0; at < bytes.length;) at += (await file.read(bytes.subarray(at))) ?? bytes.length;
file.close();
const afterRead = mb("VmRSS");

/** The model with initializers >= 1 KiB as external data: into `bytes`, or copied out. */
function external(copy: boolean): { graph: Uint8Array; data: Uint8Array } {
  const model = decodeModel(bytes);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of model.graph!.initializer!) {
    const raw = t.rawData;
    if (!raw || raw.length < 1024) continue;
    const at = copy ? offset : raw.byteOffset - bytes.byteOffset;
    t.externalData = [
      { key: "location", value: "w.bin" },
      { key: "offset", value: String(at) },
      { key: "length", value: String(raw.length) },
    ];
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    if (copy) chunks.push(raw);
    offset += raw.length;
    t.rawData = new Uint8Array(0);
  }
  let data = bytes;
  if (copy) {
    data = new Uint8Array(offset);
    let at = 0;
    for (const c of chunks) (data.set(c, at), at += c.length);
  }
  return { graph: onnx.ModelProto.encode(model).finish(), data };
}

const options: ort.InferenceSession.SessionOptions = { executionProviders: ["wasm"] };
let session: ort.InferenceSession;
if (mode.startsWith("external")) {
  const { graph, data } = external(mode === "external-copy");
  session = await ort.InferenceSession.create(graph, {
    ...options,
    externalData: [{ path: "w.bin", data }],
  });
  if (mode === "external-view-release") bytes.buffer.transfer(0);
} else if (mode === "no-prepack") {
  session = await ort.InferenceSession.create(bytes, {
    ...options,
    extra: { session: { disable_prepacking: "1" } },
  });
} else {
  session = await ort.InferenceSession.create(bytes, options);
}
const peak = mb("VmHWM"), afterSession = mb("VmRSS");
const x = new ort.Tensor("float32", new Float32Array(3 * 224 * 224).fill(0.5), [1, 3, 224, 224]);
await session.run({ data_0: x });
const t = performance.now();
for (let i = 0; i < 5; i++) await session.run({ data_0: x });
const ms = (performance.now() - t) / 5;
console.log(
  `| ${mode} | ${afterRead} | ${peak} | ${afterSession} | ${mb("VmRSS")} | ${ms.toFixed(1)} |`,
);
Deno.exit(0);
