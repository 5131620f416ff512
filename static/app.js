// AlexNet at the edge: upload page logic. Plain ES module, no dependencies, no build step.
// Talks to the same origin only: GET readyz, GET v1/models, POST predict (multipart "image").

import { describeEye, drawModelsEye } from "./eye.js";
import { setExplorerImage, setExplorerModel } from "./explorer.js";
import { setLocalImage, setLocalModel, showServerAnswer } from "./local.js";

const TOP_K = 5;
/** Give up on one classification after this long. */
const PREDICT_TIMEOUT_MS = 60_000;
/** Types the server decodes; other image types the browser can decode are converted to PNG. */
const SERVER_TYPES = new Set(["image/jpeg", "image/png", "image/gif"]);
const CONVERT_MAX_SIDE = 1024;
const NETWORK_ERROR = "Cannot reach the server: check your connection and try again.";
const LOADING_TEXT =
  "The model is loading. You can choose an image now: it will be classified as soon as the model is ready.";

/** The preview <img>, made here so the HTML never holds an <img> without a src. */
function previewImage() {
  const img = document.createElement("img");
  img.id = "preview-img";
  img.alt = "";
  img.decoding = "async";
  $("preview").prepend(img);
  return img;
}

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new TypeError(`Cannot find element #${id}`);
  return el;
};

const ui = {
  status: $("model-status"),
  statusText: $("model-status-text"),
  banner: $("weights-banner"),
  notice: $("weights-notice"),
  dropzone: $("dropzone"),
  dropzoneEmpty: $("dropzone-empty"),
  preview: $("preview"),
  previewImg: previewImage(),
  previewMissing: $("preview-missing"),
  previewCaption: $("preview-caption"),
  fileInput: /** @type {HTMLInputElement} */ ($("file-input")),
  cameraInput: /** @type {HTMLInputElement} */ ($("camera-input")),
  results: $("results"),
  error: $("error"),
  placeholder: $("placeholder"),
  skeleton: $("skeleton"),
  predictions: $("predictions"),
  timingsSection: $("timings-section"),
  timingsBar: $("timings-bar"),
  timings: $("timings"),
  answeredBy: $("answered-by"),
  modelName: $("model-name"),
  modelBackend: $("model-backend"),
  modelWeights: $("model-weights"),
  modelInput: $("model-input"),
  modelParams: $("model-params"),
  eye: $("eye"),
  eyeCanvas: /** @type {HTMLCanvasElement} */ ($("eye-canvas")),
  eyeCaption: $("eye-caption"),
  announcer: $("announcer"),
};

const DEFAULT_PLACEHOLDER = ui.placeholder.textContent.replace(/\s+/g, " ").trim();

const state = {
  ready: false,
  /** @type {Promise<void> | null} */
  readyWait: null,
  /** The image waiting for the model to load. @type {File | null} */
  pending: null,
  /** @type {AbortController | null} */
  inflight: null,
  /** @type {string | null} */
  previewUrl: null,
  /** @type {string[]} */
  previewDetails: [],
  /** @type {any} */
  model: null,
  /** The chosen image, for the model's-eye view. @type {File | null} */
  image: null,
};

const api = (path) => new URL(path, document.baseURI);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const el = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};
const fmtMs = (ms) =>
  Number.isFinite(ms) ? `${ms < 100 ? ms.toFixed(1) : Math.round(ms).toLocaleString()} ms` : "–";
const fmtPct = (score) => {
  const pct = Math.min(Math.max(Number(score) || 0, 0), 1) * 100;
  if (pct > 0 && pct < 0.1) return "<0.1%";
  return `${pct.toFixed(1)}%`;
};
const fmtBytes = (n) =>
  n < 1024
    ? `${n} B`
    : n < 1048576
    ? `${(n / 1024).toFixed(0)} KB`
    : `${(n / 1048576).toFixed(1)} MB`;

// ---------------------------------------------------------------- status, errors

function setStatus(kind, text) {
  ui.status.dataset.state = kind;
  ui.statusText.textContent = text;
  ui.status.title = text;
}

function showError(message) {
  ui.error.textContent = message;
}

function clearError() {
  ui.error.textContent = "";
}

function announce(text) {
  ui.announcer.textContent = text;
}

/** Reads `{ error: { code, message } }` from a failed response, whatever it holds. */
async function readError(res) {
  let code = "";
  let message = "";
  try {
    const body = await res.json();
    code = typeof body?.error?.code === "string" ? body.error.code : "";
    message = typeof body?.error?.message === "string" ? body.error.message : "";
  } catch {
    // Not JSON (a proxy page, say): fall back to the status below.
  }
  if (!message) {
    message = `Cannot classify the image: the server answered HTTP ${res.status}${
      res.statusText ? ` ${res.statusText}` : ""
    }.`;
  }
  return { code, message };
}

// ---------------------------------------------------------------- model readiness and info

/** Polls GET readyz until it answers 200. Shared by every caller while it runs. */
function waitUntilReady() {
  if (state.ready) return Promise.resolve();
  state.readyWait ??= (async () => {
    let delay = 500;
    for (;;) {
      try {
        const res = await fetch(api("readyz"), { cache: "no-store" });
        if (res.ok) break;
        setStatus("loading", "Loading model…");
        // Nothing chosen yet: say why the page waits.
        if (ui.preview.hidden && !state.inflight) showPlaceholder(LOADING_TEXT);
      } catch {
        setStatus("error", "Cannot reach the server, retrying…");
      }
      await sleep(delay);
      delay = Math.min(delay * 1.5, 5000);
    }
    state.ready = true;
    state.readyWait = null;
  })();
  return state.readyWait;
}

async function loadModels() {
  try {
    const res = await fetch(api("v1/models"), { cache: "no-store" });
    if (!res.ok) throw new Error((await readError(res)).message);
    const body = await res.json();
    const models = Array.isArray(body?.models) ? body.models : [];
    if (models.length === 0) throw new Error("no models listed");
    state.model = models.find((m) => m?.ready) ?? models[0];
    renderModel(state.model);
  } catch (err) {
    console.warn("Cannot load model information:", err);
  }
}

function renderModel(model) {
  if (!model) return;
  ui.modelName.textContent = model.name ?? "unknown";
  const backend = model.backend ?? {};
  const threads = Number.isInteger(backend.threads)
    ? ` · ${backend.threads} ${backend.threads === 1 ? "thread" : "threads"}`
    : "";
  ui.modelBackend.textContent = backend.name ? `${backend.name}${threads}` : "unknown";
  const p = model.preprocessing;
  const input = model.input ?? {};
  ui.modelInput.textContent = p
    ? `${p.width}×${p.height} ${p.channelOrder ?? ""}${
      p.resize?.mode === "shorter_side" ? `, shorter side ${p.resize.size} then center crop` : ""
    }${input.datatype ? ` · ${input.datatype}` : ""}`
    : (input.shape ?? []).join("×") || "unknown";
  ui.modelParams.textContent = Number.isFinite(model.parameters)
    ? `${(model.parameters / 1e6).toFixed(1)} M (${model.parameters.toLocaleString()})`
    : "unknown";
  renderWeights(model.weights);
  setExplorerModel(model);
  setLocalModel(model);
  if (state.image && ui.eye.hidden) showEye(state.image);
}

/** Shows where the weights came from, and the banner when they are synthetic. */
function renderWeights(weights) {
  const dd = ui.modelWeights;
  dd.replaceChildren();
  if (!weights || typeof weights !== "object") {
    dd.textContent = "unknown";
    ui.banner.hidden = true;
    return;
  }
  const synthetic = weights.kind === "synthetic";
  if (synthetic) {
    dd.append(`Synthetic${weights.seed !== undefined ? ` (seed ${weights.seed})` : ""}`);
  } else {
    dd.append(weights.kind === "pretrained" ? "Pretrained" : String(weights.kind ?? "unknown"));
    if (weights.source) dd.append(" from ", sourceNode(String(weights.source)));
    if (weights.sha256) {
      const hash = String(weights.sha256);
      const code = el("code", "", `${hash.slice(0, 12)}…`);
      code.title = `sha256 ${hash}`;
      dd.append(" · sha256 ", code);
    }
  }
  ui.banner.hidden = !synthetic;
  if (synthetic) {
    ui.notice.replaceChildren(
      ...withCode(weights.notice ?? "Synthetic weights: predictions are not meaningful."),
    );
  }
}

/** A link for http(s) sources, plain code text for anything else (a file path). */
function sourceNode(source) {
  try {
    const url = new URL(source);
    if (url.protocol === "https:" || url.protocol === "http:") {
      const a = el("a", "", url.host + url.pathname);
      a.href = url.href;
      a.rel = "noopener noreferrer";
      return a;
    }
  } catch {
    // Not a URL.
  }
  return el("code", "", source);
}

/** Turns "Run `deno task x` now" into text and <code> nodes, never HTML. */
function withCode(text) {
  return String(text).split("`").map((part, i) => i % 2 ? el("code", "", part) : part);
}

// ---------------------------------------------------------------- choosing an image

function showPreview(file, note) {
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = URL.createObjectURL(file);
  const name = file.name || "pasted image";
  const details = [name, fmtBytes(file.size)];
  if (note) details.push(note);
  state.previewDetails = details;
  ui.previewImg.alt = `Preview of ${name}`;
  ui.previewImg.hidden = false;
  ui.previewMissing.hidden = true;
  ui.previewCaption.textContent = details.join(" · ");
  ui.previewImg.src = state.previewUrl;
  ui.dropzoneEmpty.hidden = true;
  ui.preview.hidden = false;
  ui.dropzone.setAttribute(
    "aria-label",
    `Choose another image (now showing ${name}), or drop one here`,
  );
}

/**
 * Re-encodes images the server does not read (WebP, AVIF, BMP…) as PNG, when the browser can,
 * scaled so the shorter side is at most CONVERT_MAX_SIDE (the model looks at 256 px anyway).
 * Large JPEGs and PNGs (a phone's 12 MP photo) are scaled the same way before upload, keeping
 * their type: a smaller upload, and within the pixel caps of edge platforms (2.1 MP).
 */
async function toServerFormat(file) {
  if (!file.type.startsWith("image/")) return { file };
  const shrinkable = file.type === "image/jpeg" || file.type === "image/png";
  if (SERVER_TYPES.has(file.type) && !shrinkable) return { file };
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, CONVERT_MAX_SIDE / Math.min(bitmap.width, bitmap.height));
    if (shrinkable) return await shrunk(file, bitmap, scale);
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    if (!blob) return { file };
    const base = (file.name || "image").replace(/\.[^.]*$/, "");
    const from = file.type.replace("image/", "").toUpperCase();
    return {
      file: new File([blob], `${base}.png`, { type: "image/png" }),
      note: `converted from ${from} to PNG in your browser`,
    };
  } catch {
    return { file }; // Let the server say why it cannot read it.
  }
}

/** `file` scaled by `scale` (< 1) in its own type, or unchanged; closes `bitmap`. */
async function shrunk(file, bitmap, scale) {
  const { width, height } = bitmap;
  if (scale >= 1) {
    bitmap.close();
    return { file };
  }
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(width * scale));
  canvas.height = Math.max(1, Math.round(height * scale));
  // createImageBitmap has applied the EXIF orientation; the new file has none.
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, file.type, 0.92));
  if (!blob) return { file };
  return {
    file: new File([blob], file.name || "image", { type: file.type }),
    note: `scaled from ${width}×${height} to ${canvas.width}×${canvas.height} in your browser`,
  };
}

let choice = 0;

async function handleFile(file) {
  if (!file) return;
  const mine = ++choice;
  clearError();
  const { file: upload, note } = await toServerFormat(file);
  if (mine !== choice) return; // A newer image was chosen meanwhile.
  showPreview(file, note);
  state.image = file;
  showEye(file);
  setExplorerImage(upload);
  await classify(upload);
}

/** Draws the image as the model sees it (resize and crop from the manifest), in this browser. */
async function showEye(file) {
  const p = state.model?.preprocessing;
  if (!p) return; // Drawn when the model's description arrives.
  try {
    const done = await drawModelsEye(ui.eyeCanvas, file, p);
    if (state.image !== file) return;
    ui.eyeCaption.textContent = `${describeEye(done, p)} ${
      p.channelOrder === "BGR" ? "Fed to the model as BGR." : ""
    }`;
    ui.eye.hidden = false;
    setLocalImage(ui.eyeCanvas);
  } catch {
    // The browser cannot decode it (the server may still): no view, nothing to run here.
    ui.eye.hidden = true;
    setLocalImage(null);
  }
}

// ---------------------------------------------------------------- classifying

function setBusy(busy) {
  ui.results.setAttribute("aria-busy", String(busy));
  ui.skeleton.hidden = !busy;
  if (busy) {
    ui.placeholder.hidden = true;
    ui.predictions.hidden = true;
    ui.timingsSection.hidden = true;
  }
}

function showPlaceholder(text) {
  ui.placeholder.textContent = text;
  ui.placeholder.hidden = false;
  ui.predictions.hidden = true;
  ui.timingsSection.hidden = true;
}

async function classify(file) {
  state.inflight?.abort();
  state.pending = null;

  if (!state.ready) {
    state.pending = file;
    setBusy(false);
    showPlaceholder("The model is still loading. Your image will be classified when it is ready.");
    announce("The model is still loading; the image will be classified when it is ready.");
    waitUntilReady().then(() => {
      if (state.pending) onReady();
    });
    return;
  }

  const controller = new AbortController();
  state.inflight = controller;
  const timer = setTimeout(
    () => controller.abort(new DOMException("timeout", "TimeoutError")),
    PREDICT_TIMEOUT_MS,
  );
  setBusy(true);
  announce("Classifying…");

  const form = new FormData();
  form.append("image", file, file.name || "image");
  const url = api("predict");
  url.searchParams.set("top_k", String(TOP_K));
  const started = performance.now();

  try {
    let res;
    try {
      res = await fetch(url, { method: "POST", body: form, signal: controller.signal });
    } catch (err) {
      if (state.inflight !== controller) return; // Replaced by a newer image.
      const timedOut = controller.signal.aborted;
      throw new Error(
        timedOut
          ? "Cannot classify the image: the server took longer than a minute to answer."
          : NETWORK_ERROR,
        { cause: err },
      );
    }
    if (state.inflight !== controller) return;

    if (!res.ok) {
      const { code, message } = await readError(res);
      if (state.inflight !== controller) return;
      if (res.status === 503 && (code === "not_ready" || code === "")) {
        // The model went away (restart, reload): wait for it, then try again.
        state.ready = false;
        setStatus("loading", "Loading model…");
        state.inflight = null;
        setBusy(false);
        await classify(file);
        return;
      }
      throw new Error(message);
    }

    let body;
    try {
      body = await res.json();
    } catch (err) {
      throw new Error("Cannot read the server's answer: it is not valid JSON.", { cause: err });
    }
    if (state.inflight !== controller) return;
    if (!Array.isArray(body?.predictions)) {
      throw new Error("Cannot read the server's answer: it has no predictions.");
    }
    renderResult(body, performance.now() - started);
  } catch (err) {
    if (state.inflight !== controller) return;
    setBusy(false);
    showPlaceholder("Choose another image to try again.");
    showError(err instanceof Error ? err.message : String(err));
    revealResults();
  } finally {
    clearTimeout(timer);
    if (state.inflight === controller) {
      state.inflight = null;
      setBusy(false);
    }
  }
}

function renderResult(body, roundTripMs) {
  const predictions = [...body.predictions]
    .sort((a, b) => (Number(b?.score) || 0) - (Number(a?.score) || 0))
    .slice(0, TOP_K);

  ui.predictions.replaceChildren(...predictions.map(predictionItem));
  ui.placeholder.hidden = predictions.length > 0;
  if (predictions.length === 0) ui.placeholder.textContent = "The server returned no predictions.";
  ui.predictions.hidden = predictions.length === 0;
  // Let the bars grow from zero on the next frame.
  requestAnimationFrame(() => {
    for (const fill of ui.predictions.querySelectorAll(".meter-fill")) {
      fill.style.width = fill.dataset.width ?? "0%";
    }
  });

  renderTimings(body.timings_ms ?? {});
  showServerAnswer(body, roundTripMs);

  const model = { ...(state.model ?? {}) };
  if (body.model) model.name = body.model;
  if (body.backend) model.backend = { ...(model.backend ?? {}), name: body.backend };
  if (body.weights) model.weights = body.weights;
  state.model = model;
  renderModel(model);
  const weights = body.weights?.kind ? `, ${body.weights.kind} weights` : "";
  const roundTrip = Number.isFinite(roundTripMs)
    ? ` Round trip from this browser, upload included: ${fmtMs(roundTripMs)}.`
    : "";
  ui.answeredBy.textContent = `Answered by ${body.model ?? "the model"} (${
    body.backend ?? "unknown"
  } backend${weights}).${roundTrip}`;

  revealResults();
  const top = predictions[0];
  announce(
    top
      ? `Top prediction: ${top.label ?? `class ${top.index}`}, ${fmtPct(top.score)}.${
        body.weights?.kind === "synthetic" ? " Synthetic weights: not meaningful." : ""
      }`
      : "No predictions.",
  );
}

function predictionItem(p, i) {
  const li = el("li", "prediction");
  const id = `prediction-${i}`;
  const label = String(p?.label ?? `class ${p?.index ?? "?"}`);
  const [head, ...rest] = label.split(", ");

  const name = el("span", "pred-label");
  name.id = id;
  name.append(el("strong", "", head));
  if (rest.length) name.append(el("span", "pred-synonyms", `, ${rest.join(", ")}`));
  if (Number.isInteger(p?.index)) name.append(" ", el("span", "pred-index", `#${p.index}`));

  const pctText = fmtPct(p?.score);
  const pct = el("span", "pred-pct", pctText);

  const value = Math.min(Math.max(Number(p?.score) || 0, 0), 1) * 100;
  const meter = el("div", "meter");
  meter.setAttribute("role", "meter");
  meter.setAttribute("aria-labelledby", id);
  meter.setAttribute("aria-valuemin", "0");
  meter.setAttribute("aria-valuemax", "100");
  meter.setAttribute("aria-valuenow", value.toFixed(1));
  meter.setAttribute("aria-valuetext", pctText);
  const fill = el("div", "meter-fill");
  fill.dataset.width = `${value}%`;
  meter.append(fill);

  li.append(name, pct, meter);
  return li;
}

const STAGES = [
  ["decode", "Decode"],
  ["preprocess", "Preprocess"],
  ["inference", "Inference"],
];

function renderTimings(t) {
  const total = Number(t.total);
  const rows = STAGES.map(([key, label]) => [key, label, Number(t[key])]);

  ui.timings.replaceChildren(
    ...[...rows, ["total", "Total", total]].map(([key, label, ms]) => {
      const row = el("div");
      row.dataset.stage = key;
      row.append(el("dt", "", label), el("dd", "", fmtMs(ms)));
      return row;
    }),
  );

  ui.timingsBar.replaceChildren();
  if (Number.isFinite(total) && total > 0) {
    let sum = 0;
    for (const [key, , ms] of rows) {
      if (!Number.isFinite(ms) || ms <= 0) continue;
      sum += ms;
      ui.timingsBar.append(segment(key, ms / total));
    }
    if (total > sum) ui.timingsBar.append(segment("other", (total - sum) / total));
  }

  ui.timingsSection.hidden = false;
}

function segment(key, fraction) {
  const span = el("span");
  span.dataset.stage = key;
  span.style.width = `${Math.min(fraction, 1) * 100}%`;
  return span;
}

// ---------------------------------------------------------------- input: picker, camera, drop, paste

function openPicker() {
  ui.fileInput.click();
}

function onInputChange(event) {
  const input = /** @type {HTMLInputElement} */ (event.currentTarget);
  const file = input.files?.[0];
  input.value = ""; // Picking the same file again still fires "change".
  handleFile(file);
}

function firstImage(files) {
  const list = [...(files ?? [])];
  return list.find((f) => f.type.startsWith("image/")) ?? list[0];
}

let dragDepth = 0;
const hasFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes("Files");

function wireDragAndDrop() {
  // The whole page accepts a drop, so a near miss never navigates away to the file.
  document.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth++;
    document.body.classList.add("is-dragging");
  });
  document.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) document.body.classList.remove("is-dragging");
  });
  document.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("drop", (event) => {
    dragDepth = 0;
    document.body.classList.remove("is-dragging");
    const file = firstImage(event.dataTransfer?.files);
    if (!file) {
      if (hasFiles(event) || event.target === ui.dropzone || ui.dropzone.contains(event.target)) {
        event.preventDefault();
        showError("Cannot use what was dropped: drop an image file from your computer instead.");
      }
      return;
    }
    event.preventDefault();
    handleFile(file);
  });
}

function wirePaste() {
  document.addEventListener("paste", (event) => {
    const target = event.target;
    if (target instanceof HTMLElement && target.closest("input:not([type=file]), textarea")) {
      return;
    }
    const file = firstImage(event.clipboardData?.files);
    event.preventDefault();
    if (!file) {
      showError("Cannot paste: the clipboard holds no image. Copy an image, then paste again.");
      return;
    }
    handleFile(file);
  });
}

function onPreviewLoad() {
  const { naturalWidth: w, naturalHeight: h } = ui.previewImg;
  const [name, ...rest] = state.previewDetails;
  ui.previewCaption.textContent = [name, `${w}×${h}`, ...rest].join(" · ");
}

function onPreviewError() {
  ui.previewImg.hidden = true;
  ui.previewMissing.hidden = false;
  ui.previewCaption.textContent = state.previewDetails.join(" · ");
}

/** On narrow screens the results sit below the image: bring them into view. */
function revealResults() {
  const { top } = ui.results.getBoundingClientRect();
  if (top < globalThis.innerHeight * 0.6) return;
  const reduce = matchMedia("(prefers-reduced-motion: reduce)").matches;
  ui.results.scrollIntoView({ behavior: reduce ? "auto" : "smooth", block: "start" });
}

function onReady() {
  const name = state.model?.name;
  setStatus("ready", name ? `Ready: ${name}` : "Model ready");
  if (ui.placeholder.textContent === LOADING_TEXT) showPlaceholder(DEFAULT_PLACEHOLDER);
  const pending = state.pending;
  state.pending = null;
  if (pending) classify(pending);
}

async function main() {
  ui.dropzone.addEventListener("click", openPicker);
  ui.dropzone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      openPicker();
    }
  });
  ui.previewImg.addEventListener("load", onPreviewLoad);
  ui.previewImg.addEventListener("error", onPreviewError);
  ui.fileInput.addEventListener("change", onInputChange);
  ui.cameraInput.addEventListener("change", onInputChange);
  wireDragAndDrop();
  wirePaste();

  setStatus("loading", "Loading model…");
  loadModels(); // Show what we can while the model loads.
  await waitUntilReady();
  await loadModels();
  onReady();
}

main();
