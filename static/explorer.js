// The layer explorer: the loaded model's layers (GET v1/explorer/layers), its conv1 filters
// (GET v1/explorer/filters.png) and the feature maps of the chosen image at one layer
// (POST v1/explorer/features). Loads nothing until opened.

const $ = (id) => document.getElementById(id);
const ui = {
  details: $("explorer"),
  input: $("x-input"),
  dropout: $("x-dropout"),
  body: document.querySelector("#layers tbody"),
  foot: document.querySelector("#layers tfoot"),
  filters: $("filters"),
  filtersCaption: $("filters-caption"),
  layer: $("fm-layer"),
  fm: $("fm"),
  fmEmpty: $("fm-empty"),
  fmCaption: $("fm-caption"),
  error: $("explorer-error"),
};

const state = {
  model: null,
  /** Name of the model the table shows. */
  shown: null,
  /** @type {File | null} */
  file: null,
  /** @type {any[] | null} */
  layers: null,
  /** @type {string | null} */
  fmUrl: null,
  /** What the feature-map image shows now: [file, layer]. */
  fmShows: [null, ""],
  seq: 0,
};

const url = (path) => new URL(path, document.baseURI).href;
const int = (n) => Number(n).toLocaleString("en-US");
const mega = (n) =>
  n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : int(n);

async function failure(res) {
  try {
    const body = await res.json();
    if (body?.error?.message) return new Error(body.error.message);
  } catch {
    // Not JSON.
  }
  return new Error(`The server answered HTTP ${res.status}.`);
}

/** One line on what a layer does, from its kind, ops and settings. */
function what(l) {
  const a = l.attrs ?? {};
  const relu = l.ops.includes("Relu") ? " + ReLU" : "";
  const drop = l.ops.includes("Dropout") ? " + dropout" : "";
  switch (l.kind) {
    case "conv":
      return `conv ${a.out}@${a.kernel}×${a.kernel}/${a.stride}${a.pad ? ` pad ${a.pad}` : ""}${
        a.groups > 1 ? `, ${a.groups} groups` : ""
      }${relu}`;
    case "lrn":
      return `LRN over ${a.size} channels`;
    case "pool": {
      const kind = l.ops[0].includes("Max") ? "max pool" : "average pool";
      return a.kernel ? `${kind} ${a.kernel}×${a.kernel}/${a.stride}` : `global ${kind}`;
    }
    case "fc":
      return `fully connected ${a.out}${relu}${drop}`;
    default:
      return "softmax";
  }
}

function cell(text, className, title) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  if (title) td.title = title;
  return td;
}

/** A parameter count: exact, and short for phone width ("37.8 M"). */
function params(n) {
  const td = cell("", "num");
  if (!n) td.textContent = "–";
  else {
    const long = document.createElement("span");
    long.className = "long";
    long.textContent = int(n);
    const short = document.createElement("span");
    short.className = "short";
    short.textContent = n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : `${Math.round(n / 1e3)} K`;
    td.append(long, short);
  }
  return td;
}

function renderTable(body) {
  ui.input.textContent = body.input.shape.slice(1).join("×");
  ui.dropout.textContent = body.dropout > 0
    ? `${body.dropout} identity node${body.dropout > 1 ? "s" : ""} in this graph`
    : "not in this inference graph";
  ui.body.replaceChildren(...body.layers.map((l) => {
    const tr = document.createElement("tr");
    tr.dataset.kind = l.kind;
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = l.name;
    // At phone width the "What" column folds under the layer's name.
    const inline = document.createElement("span");
    inline.className = "what-inline";
    inline.textContent = what(l);
    th.append(inline);
    tr.append(
      th,
      cell(what(l), "what"),
      cell(l.shape ? l.shape.join("×") : "?", "", l.tensor),
      params(l.parameters),
      cell(l.macs ? mega(l.macs) : "–", "num", l.macs ? int(l.macs) : ""),
    );
    return tr;
  }));
  const total = document.createElement("tr");
  const th = document.createElement("th");
  th.scope = "row";
  th.textContent = "Total";
  total.append(
    th,
    cell("", "what"),
    cell(""),
    params(body.parameters),
    cell(mega(body.macs), "num", int(body.macs)),
  );
  ui.foot.replaceChildren(total);

  const maps = body.layers.filter((l) => l.maps);
  const previous = ui.layer.value;
  ui.layer.replaceChildren(...maps.map((l) => {
    const o = document.createElement("option");
    o.value = l.name;
    o.textContent = `${l.name} (${l.shape.join("×")})`;
    return o;
  }));
  if (maps.some((l) => l.name === previous)) ui.layer.value = previous;
  ui.layer.disabled = maps.length === 0;
}

async function load() {
  const name = state.model?.name;
  if (!name || state.shown === name) return;
  state.shown = name;
  ui.error.textContent = "";
  try {
    const res = await fetch(url("v1/explorer/layers"));
    if (!res.ok) throw await failure(res);
    const body = await res.json();
    state.layers = body.layers;
    renderTable(body);
    const conv = body.layers.find((l) => l.kind === "conv");
    ui.filters.src = url(`v1/explorer/filters.png?model=${encodeURIComponent(name)}`);
    if (conv) {
      const a = conv.attrs;
      ui.filters.alt = `The ${a.out} learned filters of ${conv.name}, ${a.kernel}×${a.kernel} each`;
      ui.filtersCaption.textContent =
        `The ${a.out} ${conv.name} filters, ${a.kernel}×${a.kernel} pixels in colour, each ` +
        "stretched to its own full range." + (body.weights === "synthetic"
          ? " These weights are synthetic (random), so the filters are noise; trained ones show " +
            "oriented edges and colour blobs."
          : "");
    }
    showMaps();
  } catch (err) {
    state.shown = null;
    ui.error.textContent = `Cannot load the explorer: ${err.message}`;
  }
}

async function showMaps() {
  if (!state.file || !state.layers || !ui.details.open || ui.layer.disabled) return;
  const layer = ui.layer.value;
  if (state.fmShows[0] === state.file && state.fmShows[1] === layer) return;
  const seq = ++state.seq;
  ui.fmCaption.textContent = `Computing the feature maps at ${layer}…`;
  ui.error.textContent = "";
  const form = new FormData();
  form.append("image", state.file, state.file.name || "image");
  const started = performance.now();
  try {
    const res = await fetch(url(`v1/explorer/features?layer=${encodeURIComponent(layer)}`), {
      method: "POST",
      body: form,
    });
    if (seq !== state.seq) return;
    if (!res.ok) throw await failure(res);
    const blob = await res.blob();
    if (seq !== state.seq) return;
    if (state.fmUrl) URL.revokeObjectURL(state.fmUrl);
    state.fmUrl = URL.createObjectURL(blob);
    const shape = (res.headers.get("x-layer-shape") ?? "").split(",");
    const shown = res.headers.get("x-maps-shown");
    const inference = /inference;dur=([\d.]+)/.exec(res.headers.get("server-timing") ?? "")?.[1];
    ui.fm.alt = `${shown} feature maps of ${layer} for the chosen image`;
    ui.fm.src = state.fmUrl;
    state.fmShows = [state.file, layer];
    ui.fm.hidden = false;
    ui.fmEmpty.hidden = true;
    ui.fmCaption.textContent =
      `${layer}: the first ${shown} of ${shape[0]} maps, ${
        shape.slice(1).join("×")
      } each, each scaled to its own range (dark low, light high). ` +
      `Server: ${inference ? `${inference} ms inference, ` : ""}${
        Math.round(performance.now() - started)
      } ms round trip.`;
  } catch (err) {
    if (seq !== state.seq) return;
    ui.fmCaption.textContent = "";
    ui.error.textContent = `Cannot show the feature maps: ${err.message}`;
  }
}

/** The model as GET v1/models describes it. */
export function setExplorerModel(model) {
  state.model = model;
  if (ui.details.open) load();
}

/** The image to show feature maps for (what the server was sent). */
export function setExplorerImage(file) {
  state.file = file;
  showMaps();
}

ui.details.addEventListener("toggle", () => {
  if (ui.details.open) {
    if (state.shown) showMaps();
    else load();
  }
});
ui.layer.addEventListener("change", showMaps);
