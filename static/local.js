// Classifying in the browser with onnxruntime-web, beside the server's answer.
// The runtime comes from this server (vendor/ort/), the model from v1/models/current.onnx;
// nothing loads until the button is pressed.

import { inputTensor } from "./eye.js";

const $ = (id) => document.getElementById(id);
const ui = {
  run: $("local-run"),
  size: $("local-size"),
  server: $("cmp-server"),
  serverTime: $("cmp-server-time"),
  serverBackend: $("cmp-server-backend"),
  local: $("cmp-local"),
  localTime: $("cmp-local-time"),
  localBackend: $("cmp-local-backend"),
  error: $("local-error"),
};

const state = {
  /** The model as GET v1/models describes it. */
  model: null,
  /** @type {HTMLCanvasElement | null} The model's-eye canvas of the current image. */
  canvas: null,
  /** @type {Promise<{ ort: any, session: any, labels: string[], backend: string }> | null} */
  runtime: null,
  /** Times of the one-off work: download, session creation. */
  setup: null,
  runs: 0,
};

const url = (path) => new URL(path, document.baseURI).href;
const ms = (t) => `${t < 100 ? t.toFixed(1) : Math.round(t).toLocaleString("en-US")} ms`;
const mb = (n) => `${(n / 1048576).toFixed(n < 10485760 ? 1 : 0)} MB`;
const pct = (s) => `${(Math.min(Math.max(Number(s) || 0, 0), 1) * 100).toFixed(1)}%`;

function list(ol, predictions) {
  ol.replaceChildren(
    ...predictions.slice(0, 5).map((p) => {
      const li = document.createElement("li");
      const score = document.createElement("span");
      score.className = "pct";
      score.textContent = pct(p.score);
      li.append(score, String(p.label ?? `class ${p.index}`).split(", ")[0]);
      li.title = `${p.label} (#${p.index})`;
      return li;
    }),
  );
}

/** The server's top 5 and timings, for the left column. */
export function showServerAnswer(body, roundTripMs) {
  list(ui.server, body.predictions ?? []);
  ui.serverBackend.textContent = body.backend ? `(${body.backend})` : "";
  const t = body.timings_ms ?? {};
  const parts = [`inference ${ms(Number(t.inference))}`, `total ${ms(Number(t.total))}`];
  if (Number.isFinite(roundTripMs)) parts.push(`round trip ${ms(roundTripMs)}`);
  ui.serverTime.textContent = parts.join(" · ");
}

/** The model as GET v1/models describes it; asks for the file size once. */
export function setLocalModel(model) {
  const changed = state.model?.name !== model?.name;
  state.model = model;
  if (!changed || !model?.name) return;
  fetch(url("v1/models/current.onnx"), { method: "HEAD" }).then((res) => {
    const n = Number(res.headers.get("content-length"));
    if (res.ok && n > 0) ui.size.textContent = mb(n);
    else if (!res.ok) {
      ui.size.textContent = "not offered for this model";
      ui.run.disabled = true;
    }
  }).catch(() => {});
}

/** A new model's-eye canvas (null: nothing to classify); runs at once if the runtime is ready. */
export function setLocalImage(canvas) {
  state.canvas = canvas;
  if (canvas && state.runtime) run();
}

async function loadRuntime(onStatus) {
  const t0 = performance.now();
  let adapter = null;
  try {
    adapter = await navigator.gpu?.requestAdapter();
  } catch {
    // No WebGPU here.
  }
  const ort = await import(
    url(`vendor/ort/${adapter ? "ort.webgpu.min.mjs" : "ort.wasm.min.mjs"}`)
  );
  ort.env.wasm.wasmPaths = url("vendor/ort/");
  // Threads need cross-origin isolation (SharedArrayBuffer); one thread otherwise.
  ort.env.wasm.numThreads = globalThis.crossOriginIsolated
    ? Math.min(4, navigator.hardwareConcurrency || 1)
    : 1;

  const res = await fetch(url("v1/models/current.onnx"));
  if (!res.ok) throw new Error(await errorText(res, "Cannot download the model"));
  const total = Number(res.headers.get("content-length")) || 0;
  const bytes = total ? new Uint8Array(total) : null;
  const chunks = [];
  let got = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (bytes) bytes.set(value, got);
    else chunks.push(value);
    got += value.length;
    onStatus(`Downloading the model: ${mb(got)}${total ? ` of ${mb(total)}` : ""}…`);
  }
  const model = bytes ?? new Uint8Array(await new Blob(chunks).arrayBuffer());
  const t1 = performance.now();

  const labelsRes = await fetch(url("v1/models/current/labels"));
  const labels = labelsRes.ok ? (await labelsRes.json()).labels : [];

  onStatus("Preparing the model in this browser…");
  let backend = adapter ? "WebGPU" : "WebAssembly";
  let session;
  try {
    session = await ort.InferenceSession.create(model, {
      executionProviders: adapter ? ["webgpu", "wasm"] : ["wasm"],
    });
  } catch (err) {
    if (!adapter) throw err;
    console.warn("WebGPU session failed, using WebAssembly:", err);
    backend = "WebAssembly";
    session = await ort.InferenceSession.create(model, { executionProviders: ["wasm"] });
  }
  state.setup = { download: t1 - t0, session: performance.now() - t1, bytes: got };
  return { ort, session, labels, backend };
}

async function errorText(res, prefix) {
  try {
    const body = await res.json();
    if (body?.error?.message) return body.error.message;
  } catch {
    // Not JSON.
  }
  return `${prefix}: the server answered HTTP ${res.status}.`;
}

function softmax(x) {
  const max = Math.max(...x);
  const e = Array.from(x, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

let running = false;

async function run() {
  if (running || !state.canvas || !state.model) return;
  running = true;
  ui.error.textContent = "";
  ui.run.disabled = true;
  const status = (text) => (ui.localTime.textContent = text);
  try {
    const { ort, session, labels, backend } = await state.runtime;
    ui.localBackend.textContent = `(${backend}, ${ort.env.wasm.numThreads} thread${
      ort.env.wasm.numThreads > 1 ? "s" : ""
    })`;
    const { input, output, preprocessing: p } = state.model;
    status("Classifying in this browser…");
    const t0 = performance.now();
    const x = inputTensor(state.canvas, p);
    const t1 = performance.now();
    const feeds = { [input.name]: new ort.Tensor("float32", x, [1, 3, p.height, p.width]) };
    const out = await session.run(feeds, [output.name]);
    const t2 = performance.now();
    const raw = out[output.name].data;
    const scores = output.kind === "logits" ? softmax(raw) : Array.from(raw);
    const top = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a]).slice(0, 5);
    list(
      ui.local,
      top.map((i) => ({ index: i, label: labels[i] ?? `class ${i}`, score: scores[i] })),
    );
    const parts = [`inference ${ms(t2 - t1)}`, `preprocess ${ms(t1 - t0)}`];
    if (state.runs++ === 0 && state.setup) {
      parts.push(
        `first run; download ${ms(state.setup.download)}, setup ${ms(state.setup.session)}`,
      );
    }
    status(parts.join(" · "));
  } catch (err) {
    state.runtime = null; // Let the button try again.
    status("Not run.");
    const text = err instanceof Error ? err.message : String(err);
    ui.error.textContent = /Content Security Policy|unsafe-eval/i.test(text)
      ? "Cannot classify in this browser: this server's Content-Security-Policy does not allow " +
        "WebAssembly (script-src needs 'wasm-unsafe-eval')."
      : `Cannot classify in this browser: ${text}`;
  } finally {
    running = false;
    ui.run.disabled = false;
  }
}

ui.run.addEventListener("click", () => {
  if (!state.canvas) {
    ui.error.textContent = "Choose an image first: it is then classified here and on the server.";
    return;
  }
  state.runtime ??= loadRuntime((text) => (ui.localTime.textContent = text));
  run();
});
