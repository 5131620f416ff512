/**
 * The layer explorer: the loaded model read back as the paper's layers.
 *
 * - `GET /v1/explorer/layers`: every layer's output shape, parameters and
 *   multiply-adds, computed from the loaded graph (input dims, weight dims,
 *   node attributes), not from a table.
 * - `GET /v1/explorer/filters.png`: the first convolution's filters (AlexNet:
 *   96 of 11x11x3), each normalized to 0..255; `?scale=1..8` pixels per
 *   weight (default 4).
 * - `POST /v1/explorer/features?layer=conv1`: an image (the bodies /predict
 *   takes) in, the first 64 feature maps of that layer out, as a PNG grid,
 *   each map min-max normalized and heat-mapped. Layers with feature maps are
 *   those with a [C, H, W] output (AlexNet: conv1 to pool5).
 *
 * The graph is read, and the layers up to the last one with feature maps are
 * run, in a worker with its own onnxruntime-web instance (see
 * `_explorer_worker.ts`), which ends after five idle minutes.
 *
 * @module
 */
import { Hono } from "hono";
import type { Classifier } from "../classify/mod.ts";
import { ClassifierError } from "../errors.ts";
import { notReadyMessage } from "./health.ts";
import { Pipeline, type Steps } from "./pipeline.ts";
import type { ServerState } from "./state.ts";
import { ExplorerEngine } from "./_explorer_engine.ts";
import type { InitResult } from "./_explorer_worker.ts";
import { drawFeatureMaps, drawFilters } from "./_grid.ts";
import { readImageBody } from "./_image_request.ts";
import { findModelFiles, type LocateModel, type ModelFiles } from "./_model_files.ts";
import { encodePng } from "./_png.ts";
import { Slots } from "./_slots.ts";

/** Options of {@linkcode explorerRoutes}. */
export interface ExplorerOptions {
  /** The request pipeline /features goes through (default: one of its own, default budgets). */
  pipeline?: Pipeline;
  /** Finds the loaded model's files by its name (default: its manifest in models/). */
  locate?: LocateModel;
  /** Milliseconds the worker stays up without requests (default 5 minutes). */
  idleMs?: number;
}

/** Feature maps drawn per request. */
export const FEATURE_MAPS_SHOWN = 64;

/** What the explorer keeps about one loaded model. */
interface Session {
  classifier: Classifier;
  files: Promise<ModelFiles>;
  engine?: ExplorerEngine;
  summary?: Promise<InitResult>;
  filters: Map<number, Uint8Array<ArrayBuffer>>;
}

const round = (ms: number) => Math.round(ms * 10) / 10;

/** x: [3, H, W] for the engine, and how long the classifier took to make it. */
interface Prepared {
  x: Float32Array;
  prepareMs: number;
}

/** The drawn feature maps and the times behind them. */
interface Drawn {
  png: Uint8Array<ArrayBuffer>;
  dims: number[];
  grid: ReturnType<typeof drawFeatureMaps>;
  timings: { prepareMs: number; inferenceMs: number; drawMs: number };
}

/**
 * The explorer's routes, mounted at `/v1/explorer`.
 *
 * @example
 * ```ts
 * app.route("/v1/explorer", explorerRoutes(state, { pipeline }));
 * ```
 */
export function explorerRoutes(state: ServerState, options: ExplorerOptions = {}): Hono {
  const pipeline = options.pipeline ?? new Pipeline();
  // The engine runs one capture at a time: captures wait for it here, in the pipeline's order,
  // and one whose client left (or whose deadline passed) never reaches the engine.
  const lanes = new Slots(1);
  const locate = options.locate ?? ((name: string) => findModelFiles(name));
  let current: Session | undefined;

  /** The session for the loaded model, started on first use and when the model changes. */
  function session(): Session {
    const classifier = state.classifier;
    if (!classifier) throw new ClassifierError("not_ready", notReadyMessage(state));
    if (current?.classifier !== classifier) {
      current?.engine?.close();
      const name = classifier.info.name;
      const files = locate(name).then((found) => {
        if (found) return found;
        throw new ClassifierError(
          "not_found",
          `Cannot explore ${name}: its ONNX file is not beside a manifest in models/`,
        );
      });
      files.catch(() => {});
      current = { classifier, files, filters: new Map() };
    }
    return current;
  }

  /** A running worker; a new one when the last went idle. */
  async function engine(s: Session): Promise<ExplorerEngine> {
    const files = await s.files;
    if (!s.engine || s.engine.closed) {
      const { width, height } = s.classifier.info.preprocessing;
      s.engine = new ExplorerEngine(files.model, [3, height, width], { idleMs: options.idleMs });
    }
    return s.engine;
  }

  /** The layer table, read once per model. */
  function summary(s: Session): Promise<InitResult> {
    s.summary ??= engine(s).then((e) => e.summary).catch((e) => {
      s.summary = undefined; // Try again on the next request.
      if (e instanceof ClassifierError) throw e;
      throw new ClassifierError(
        "model_invalid",
        "Cannot explore the model: its graph could not be read",
        { cause: e },
      );
    });
    return s.summary;
  }

  return new Hono()
    .get("/layers", async (c) => {
      const s = session();
      const { input, layers, parameters, macs, dropout } = await summary(s);
      const info = s.classifier.info;
      return c.json({
        model: info.name,
        weights: info.weights.kind,
        input,
        parameters,
        macs,
        dropout,
        layers: layers.map((l) => ({ ...l, maps: l.shape?.length === 3 })),
      });
    })
    .get("/filters.png", async (c) => {
      const s = session();
      const scale = Number(c.req.query("scale") ?? 4);
      if (!Number.isInteger(scale) || scale < 1 || scale > 8) {
        throw new ClassifierError(
          "bad_request",
          `Cannot draw the filters at scale=${c.req.query("scale")}: use an integer from 1 to 8`,
        );
      }
      const { firstConv } = await summary(s);
      if (!firstConv) {
        throw new ClassifierError("not_found", "Cannot draw filters: the model has no convolution");
      }
      let png = s.filters.get(scale);
      if (!png) {
        const bgr = s.classifier.info.preprocessing.channelOrder === "BGR";
        png = encodePng(drawFilters(firstConv.values, firstConv.dims, { scale, bgr }));
        s.filters.set(scale, png);
      }
      return c.body(png, 200, {
        "content-type": "image/png",
        "cache-control": "no-cache",
        "x-layer": firstConv.layer,
        "x-filters-shape": firstConv.dims.join(","),
      });
    })
    .post("/features", async (c) => {
      const s = session();
      const { layers } = await summary(s);
      const layer = pickLayer(layers, c.req.query("layer"));
      return await pipeline.handle(c, s.classifier, featureSteps(layer, () => engine(s), lanes));
    });
}

/** The layer of `name` among those with feature maps (default: the first); 400 for another. */
function pickLayer(layers: InitResult["layers"], name: string | undefined) {
  const withMaps = layers.filter((l) => l.shape?.length === 3);
  const wanted = name ?? withMaps[0]?.name;
  const layer = withMaps.find((l) => l.name === wanted);
  if (layer) return layer;
  throw new ClassifierError(
    "bad_request",
    `Cannot show feature maps of layer "${wanted ?? ""}": pick one of ${
      withMaps.map((l) => l.name).join(", ") || "(none in this model)"
    }`,
  );
}

/** Features in the pipeline's order: the image is prepared by the classifier, run by the engine. */
function featureSteps(
  layer: InitResult["layers"][number],
  engine: () => Promise<ExplorerEngine>,
  lanes: Slots,
): Steps<Uint8Array, Prepared, Drawn> {
  return {
    async parse(body, c) {
      return (await readImageBody(body, c.req.raw)).bytes;
    },
    async prepare(bytes, { classifier, maxPixels, signal }) {
      const t0 = performance.now();
      // x: [3, H, W], decoded within the budgets, where the classifier decodes.
      const x = await classifier.prepareImage(bytes, { maxPixels, signal });
      return { x, prepareMs: performance.now() - t0 };
    },
    async run({ x, prepareMs }, { signal }) {
      const t0 = performance.now();
      const e = await engine();
      signal?.throwIfAborted();
      const { data, dims } = await e.features(x, layer.tensor);
      const t1 = performance.now();
      const grid = drawFeatureMaps(data, dims, FEATURE_MAPS_SHOWN);
      const png = encodePng(grid);
      return {
        png,
        dims,
        grid,
        timings: { prepareMs, inferenceMs: t1 - t0, drawMs: performance.now() - t1 },
      };
    },
    answer({ png, dims, grid, timings }, c) {
      return c.body(png, 200, {
        "content-type": "image/png",
        "cache-control": "no-store",
        "x-layer": layer.name,
        "x-layer-shape": dims.join(","),
        "x-maps-shown": String(grid.shown),
        "x-grid": `${grid.cols}x${grid.rows}`,
        "server-timing": [
          // The classifier decodes and preprocesses in one call.
          `decode;dur=${round(timings.prepareMs)}`,
          `inference;dur=${round(timings.inferenceMs)}`,
          `draw;dur=${round(timings.drawMs)}`,
        ].join(", "),
      });
    },
    lanes,
  };
}
