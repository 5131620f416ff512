/**
 * What the page needs to classify in the browser with onnxruntime-web:
 *
 * - `GET /v1/models/current.onnx`: the loaded model's ONNX file, streamed,
 *   with an ETag so a browser that has it gets 304.
 * - `GET /v1/models/current/labels`: its class names, `{ "labels": [...] }`.
 * - `GET /vendor/ort/<file>`: onnxruntime-web's browser builds (`ort*.mjs`)
 *   and WebAssembly (`ort-wasm-*.wasm`), from the npm package the server
 *   runs on, so page and server use the same runtime version. The package is
 *   found where Deno resolved it (import.meta.resolve), not at a fixed
 *   node_modules path: `deno deploy` never uploads node_modules, the platform
 *   installs the package from deno.lock (deno.json `deploy.install`).
 *
 * @module
 */
import { Hono } from "hono";
import { ClassifierError } from "../errors.ts";
import { parseLabels } from "../model/manifest.ts";
import { notReadyMessage } from "./health.ts";
import type { ServerState } from "./state.ts";
import { serveFile } from "./_files.ts";
import { findModelFiles, type LocateModel, type ModelFiles } from "./_model_files.ts";

/** onnxruntime-web's dist folder: where the package the server imports lives. */
export const ORT_DIST: URL = ortDist();

function ortDist(): URL {
  try {
    // Deno resolves the package's entry inside dist/ (node_modules or its npm cache).
    const entry = new URL(import.meta.resolve("onnxruntime-web"));
    if (entry.protocol === "file:") return new URL("./", entry);
  } catch {
    // Not resolvable to a file here (a bundle without the package): the fixed path below.
  }
  return new URL("../../node_modules/onnxruntime-web/dist/", import.meta.url);
}

/** onnxruntime-web files the page may load: ES modules and WebAssembly, no source maps. */
const ORT_FILE = /^ort[a-z0-9.-]*\.(mjs|wasm)$/;

/** Options of {@linkcode browserRoutes}. */
export interface BrowserOptions {
  /** Finds the loaded model's files by its name (default: its manifest in models/). */
  locate?: LocateModel;
  /** Where onnxruntime-web's dist files are (default {@linkcode ORT_DIST}). */
  ortDir?: URL;
}

/**
 * The routes, mounted at `/`.
 *
 * @example
 * ```ts
 * app.route("/", browserRoutes(state));
 * ```
 */
export function browserRoutes(state: ServerState, options: BrowserOptions = {}): Hono {
  const locate = options.locate ?? ((name: string) => findModelFiles(name));
  const ortDir = options.ortDir ?? ORT_DIST;

  async function files(): Promise<{ name: string; files: ModelFiles }> {
    const classifier = state.classifier;
    if (!classifier) throw new ClassifierError("not_ready", notReadyMessage(state));
    const name = classifier.info.name;
    const found = await locate(name);
    if (!found) {
      throw new ClassifierError(
        "not_found",
        `Cannot offer ${name} to the browser: its ONNX file is not beside a manifest in models/`,
      );
    }
    return { name, files: found };
  }

  return new Hono()
    .get("/v1/models/current.onnx", async (c) => {
      const { name, files: f } = await files();
      const res = await serveFile(c, f.model, {
        contentType: "application/octet-stream",
        headers: { "x-model-name": name },
      });
      if (!res) throw new ClassifierError("not_found", `Cannot find the ONNX file of ${name}`);
      return res;
    })
    .get("/v1/models/current/labels", async (c) => {
      const { name, files: f } = await files();
      let text: string;
      try {
        text = await Deno.readTextFile(f.labels);
      } catch {
        throw new ClassifierError("not_found", `Cannot find the labels of ${name}`);
      }
      c.header("cache-control", "no-cache");
      // Its error names the file, not the folder: client bodies carry no filesystem path.
      const where = f.labels.pathname.slice(f.labels.pathname.lastIndexOf("/") + 1);
      return c.json({ model: name, labels: parseLabels(text, where) });
    })
    .get("/vendor/ort/:file", async (c, next) => {
      const file = c.req.param("file");
      if (!ORT_FILE.test(file)) return next();
      const res = await serveFile(c, new URL(file, ortDir), {
        contentType: file.endsWith(".wasm") ? "application/wasm" : "text/javascript; charset=utf-8",
        cacheControl: "public, max-age=86400",
      });
      return res ?? next();
    });
}
