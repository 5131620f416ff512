/**
 * A deterministic mutation fuzzer for POST /predict: each case is a fixture
 * image mutated one way (bit flips, byte rewrites, truncation, header-field
 * rewrites that know each format's layout, spliced blocks, random bytes under
 * a real magic number, or nothing), sent in one of the three request forms
 * with a right, wrong or missing Content-Type, plus a few over-limit bodies.
 * The same seed gives the same cases, so any failure can be replayed by id.
 *
 * The rules each answer must keep: 200 with predictions, or a 4xx JSON error
 * whose message reveals no path or stack, or 503 `overloaded`/`timeout`
 * (only under load); never another 5xx, never a dropped connection; an
 * unmutated image in a correct request is 200.
 *
 * @module
 */
import { sniffImageFormat } from "../../src/image/sniff.ts";
import { mulberry32 } from "../../src/graph/weights.ts";

/** One fuzz case. */
export interface FuzzCase {
  id: number;
  /** Fixture it came from. */
  source: string;
  /** How the bytes were changed ("none" for the original). */
  mutation: string;
  /** Request form and Content-Type. */
  form: "raw" | "multipart" | "json";
  contentType?: string;
  /** For the multipart form: how the form is built. */
  formShape?: "one" | "none" | "two" | "string";
  bytes: Uint8Array;
  /** Whether this request must succeed (an unmutated image, well formed). */
  mustSucceed: boolean;
}

/** A small seeded PRNG (mulberry32, the synthetic weights' own) so "random" tests repeat. */
export const prng = mulberry32;

type Random = () => number;
const int = (r: Random, n: number) => Math.floor(r() * n);
const pick = <T>(r: Random, items: readonly T[]): T => items[int(r, items.length)];

const INTERESTING = [
  0,
  1,
  2,
  3,
  4,
  7,
  8,
  15,
  16,
  17,
  31,
  32,
  63,
  64,
  127,
  128,
  255,
  256,
  1023,
  1024,
  4095,
  4096,
  8191,
  16383,
  16384,
  32767,
  32768,
  65535,
  65536,
  0xffffff,
  0x7fffffff,
  0x80000000,
  0xffffffff,
];

/** A header field: where, how wide, which byte order. */
interface Field {
  at: number;
  width: 1 | 2 | 3 | 4;
  bigEndian: boolean;
  name: string;
}

function write(bytes: Uint8Array, f: Field, value: number): void {
  for (let i = 0; i < f.width; i++) {
    const shift = 8 * (f.bigEndian ? f.width - 1 - i : i);
    if (f.at + i < bytes.length) bytes[f.at + i] = Math.floor(value / 2 ** shift) & 255;
  }
}

const be = (at: number, width: Field["width"], name: string): Field => ({
  at,
  width,
  bigEndian: true,
  name,
});
const le = (at: number, width: Field["width"], name: string): Field => ({
  at,
  width,
  bigEndian: false,
  name,
});

const u16be = (b: Uint8Array, at: number) => (b[at] << 8) | b[at + 1];
const u32be = (b: Uint8Array, at: number) => u16be(b, at) * 65536 + u16be(b, at + 2);
const u32le = (b: Uint8Array, at: number) =>
  (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16)) + b[at + 3] * 2 ** 24;

// The header fields of each format worth rewriting: sizes, depths, counts, lengths.
function headerFields(b: Uint8Array): Field[] {
  switch (sniffImageFormat(b)) {
    case "png": {
      const fields = [
        be(16, 4, "png.width"),
        be(20, 4, "png.height"),
        be(24, 1, "png.depth"),
        be(25, 1, "png.colour"),
        be(28, 1, "png.interlace"),
      ];
      for (let at = 8; at + 8 <= b.length && fields.length < 40;) {
        fields.push(be(at, 4, "png.chunk_length"), be(at + 4, 4, "png.chunk_type"));
        at += 12 + u32be(b, at);
      }
      return fields;
    }
    case "jpeg": {
      const fields: Field[] = [];
      for (let at = 2; at + 4 <= b.length && b[at] === 0xff;) {
        const marker = b[at + 1];
        if (marker === 0xda || marker === 0xd9) break;
        fields.push(be(at + 2, 2, "jpeg.segment_length"));
        if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
          fields.push(
            be(at + 4, 1, "jpeg.precision"),
            be(at + 5, 2, "jpeg.height"),
            be(at + 7, 2, "jpeg.width"),
            be(at + 9, 1, "jpeg.components"),
            be(at + 11, 1, "jpeg.sampling"),
            be(at + 12, 1, "jpeg.quant_table"),
          );
        }
        if (marker === 0xc4) fields.push(be(at + 4, 1, "jpeg.huffman_class"));
        if (marker === 0xdb) fields.push(be(at + 4, 1, "jpeg.quant_precision"));
        at += 2 + u16be(b, at + 2);
      }
      return fields;
    }
    case "gif": {
      const fields = [
        le(6, 2, "gif.width"),
        le(8, 2, "gif.height"),
        le(10, 1, "gif.packed"),
      ];
      const table = b[10] & 0x80 ? 3 * 2 ** ((b[10] & 7) + 1) : 0;
      let at = 13 + table;
      while (at < b.length && b[at] === 0x21) {
        at += 2;
        while (at < b.length && b[at] !== 0) at += b[at] + 1;
        at++;
      }
      if (b[at] === 0x2c) {
        fields.push(
          le(at + 1, 2, "gif.frame_x"),
          le(at + 3, 2, "gif.frame_y"),
          le(at + 5, 2, "gif.frame_width"),
          le(at + 7, 2, "gif.frame_height"),
          le(at + 9, 1, "gif.frame_packed"),
        );
        const local = b[at + 9] & 0x80 ? 3 * 2 ** ((b[at + 9] & 7) + 1) : 0;
        fields.push(le(at + 10 + local, 1, "gif.lzw_code_size"));
      }
      return fields;
    }
    case "bmp":
      return [
        le(2, 4, "bmp.file_size"),
        le(10, 4, "bmp.data_offset"),
        le(14, 4, "bmp.dib_size"),
        le(18, 4, "bmp.width"),
        le(22, 4, "bmp.height"),
        le(28, 2, "bmp.bpp"),
        le(30, 4, "bmp.compression"),
        le(46, 4, "bmp.colours_used"),
        le(54, 4, "bmp.red_mask"),
        le(66, 4, "bmp.alpha_mask"),
      ];
    case "webp": {
      const fields = [le(4, 4, "webp.riff_size"), le(16, 4, "webp.chunk_size")];
      const type = String.fromCharCode(...b.subarray(12, 16));
      if (type === "VP8X") {
        fields.push(
          le(20, 1, "webp.vp8x_flags"),
          le(24, 3, "webp.canvas_width"),
          le(27, 3, "webp.canvas_height"),
        );
      }
      if (type === "VP8 ") fields.push(le(26, 2, "webp.vp8_width"), le(28, 2, "webp.vp8_height"));
      if (type === "VP8L") fields.push(le(21, 4, "webp.vp8l_size_bits"));
      for (let at = 12; at + 8 <= b.length && fields.length < 30;) {
        const name = String.fromCharCode(...b.subarray(at, at + 4));
        fields.push(le(at + 4, 4, `webp.${name.trim().toLowerCase()}_size`));
        if (name === "ANMF") {
          fields.push(le(at + 8, 3, "webp.frame_x"), le(at + 14, 3, "webp.frame_width"));
          at += 24; // into the frame's own chunks
          continue;
        }
        const size = u32le(b, at + 4);
        at += 8 + size + (size % 2);
      }
      return fields;
    }
    default:
      return [];
  }
}

/** The mutations, by name. Each returns new bytes and a label with details. */
const MUTATIONS: Record<string, (b: Uint8Array, r: Random) => [Uint8Array, string]> = {
  none: (b) => [b, "none"],
  bitflip(b, r) {
    const out = b.slice();
    const n = 1 + int(r, 8);
    for (let i = 0; i < n; i++) out[int(r, out.length)] ^= 1 << int(r, 8);
    return [out, `bitflip x${n}`];
  },
  bytes(b, r) {
    const out = b.slice();
    const n = 1 + int(r, 16);
    for (let i = 0; i < n; i++) {
      out[int(r, out.length)] = pick(r, [0, 0xff, 0x7f, 0x80, int(r, 256)]);
    }
    return [out, `bytes x${n}`];
  },
  truncate(b, r) {
    const cut = r() < 0.4 ? int(r, Math.min(b.length, 96)) : int(r, b.length);
    return [b.slice(0, cut), `truncate @${cut}`];
  },
  header(b, r) {
    const fields = headerFields(b);
    if (fields.length === 0) return MUTATIONS.bytes(b, r);
    const f = pick(r, fields);
    const out = b.slice();
    const max = 2 ** (8 * f.width) - 1;
    const value = r() < 0.7 ? Math.min(max, pick(r, INTERESTING)) : int(r, max + 1);
    write(out, f, value);
    return [out, `header ${f.name}=${value}`];
  },
  splice(b, r) {
    const len = 1 + int(r, Math.min(512, b.length));
    const from = int(r, Math.max(1, b.length - len));
    const to = int(r, b.length);
    const block = b.slice(from, from + len);
    const kind = pick(r, ["insert", "overwrite", "delete"] as const);
    if (kind === "delete") {
      const out = new Uint8Array(b.length - block.length);
      out.set(b.subarray(0, from));
      out.set(b.subarray(from + block.length), from);
      return [out, `splice delete ${len}@${from}`];
    }
    if (kind === "overwrite") {
      const out = b.slice();
      out.set(block.subarray(0, out.length - to), to);
      return [out, `splice overwrite ${len}@${to}`];
    }
    const out = new Uint8Array(b.length + block.length);
    out.set(b.subarray(0, to));
    out.set(block, to);
    out.set(b.subarray(to), to + block.length);
    return [out, `splice insert ${len}@${to}`];
  },
  random(b, r) {
    const out = new Uint8Array(int(r, 2048));
    for (let i = 0; i < out.length; i++) out[i] = int(r, 256);
    // Half keep the fixture's first bytes, so the decoder (not the sniffer) meets the noise.
    const keep = r() < 0.5 ? Math.min(out.length, 12 + int(r, 48)) : 0;
    out.set(b.subarray(0, keep));
    return [out, `random ${out.length}B keep ${keep}`];
  },
};

// Weights: header rewrites and truncation find the most; "none" keeps the baseline honest.
const PLAN: [string, number][] = [
  ["none", 6],
  ["bitflip", 16],
  ["bytes", 14],
  ["truncate", 16],
  ["header", 24],
  ["splice", 12],
  ["random", 12],
];

const IMAGE_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"];
const WRONG_TYPES = [
  "text/plain",
  "application/json",
  "multipart/form-data; boundary=nothing-here",
  "application/x-www-form-urlencoded",
  "image/svg+xml",
  "",
];

/**
 * Generates `count` cases from `corpus` (name -> bytes), deterministically from `seed`.
 *
 * @example
 * ```ts
 * for (const c of generateCases(corpus, 2000, 1)) await send(c);
 * ```
 */
export function* generateCases(
  corpus: Map<string, Uint8Array>,
  count: number,
  seed: number,
): Generator<FuzzCase> {
  const r = prng(seed);
  const names = [...corpus.keys()].sort();
  const total = PLAN.reduce((n, [, w]) => n + w, 0);
  for (let id = 0; id < count; id++) {
    const source = names[id % names.length];
    let roll = r() * total;
    const [name] = PLAN.find(([, w]) => (roll -= w) < 0) ?? PLAN[0];
    const [bytes, mutation] = MUTATIONS[name](corpus.get(source)!, r);
    const formRoll = r();
    const form = formRoll < 0.7 ? "raw" : formRoll < 0.85 ? "multipart" : "json";
    let contentType: string | undefined;
    let formShape: FuzzCase["formShape"];
    let wellFormed = true;
    if (form === "raw") {
      const t = r();
      contentType = t < 0.4
        ? pick(r, IMAGE_TYPES)
        : t < 0.7
        ? "application/octet-stream"
        : t < 0.85
        ? undefined
        : pick(r, WRONG_TYPES);
      // A JSON or multipart type on raw image bytes cannot parse: 400 is right for those.
      if (contentType && /json|multipart/.test(contentType)) wellFormed = false;
    } else if (form === "multipart") {
      const s = r();
      formShape = s < 0.85 ? "one" : s < 0.9 ? "none" : s < 0.95 ? "two" : "string";
      wellFormed = formShape === "one";
    }
    yield {
      id,
      source,
      mutation,
      form,
      contentType,
      formShape,
      bytes,
      mustSucceed: mutation === "none" && wellFormed,
    };
  }
}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** The request a case sends. */
export function toRequest(url: string, c: FuzzCase): Request {
  const target = `${url}/predict`;
  if (c.form === "json") {
    return new Request(target, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ image: base64(c.bytes) }),
    });
  }
  if (c.form === "multipart") {
    const form = new FormData();
    const blob = new Blob([c.bytes as BlobPart]);
    if (c.formShape === "one" || c.formShape === "two") form.append("image", blob, "upload");
    if (c.formShape === "two") form.append("image", blob, "upload2");
    if (c.formShape === "none") form.append("picture", blob, "upload");
    if (c.formShape === "string") form.append("image", "not a file");
    return new Request(target, { method: "POST", body: form });
  }
  const headers: Record<string, string> = c.contentType === undefined
    ? {}
    : { "content-type": c.contentType };
  return new Request(target, { method: "POST", headers, body: c.bytes as BodyInit });
}

/** What one run saw. */
export interface FuzzReport {
  cases: number;
  /** Answers by HTTP status. */
  statuses: Record<string, number>;
  /** Error answers by code. */
  codes: Record<string, number>;
  /** Broken rules, with the case that broke them (at most 50 kept). */
  violations: string[];
  violationCount: number;
  seconds: number;
}

// Internals a message must never show: paths, stack frames, decoder errors.
const LEAK =
  /\/(work|home|tmp|usr|root)\/|file:\/\/|\.ts:\d+|\bat \S+ \(|[A-Za-z]*Error:|node_modules|RuntimeError|unreachable|wasm/i;

/** Checks one answer against the rules; returns what is wrong, or null. */
export async function checkAnswer(
  c: FuzzCase,
  res: Response,
  options: { allow503: boolean },
): Promise<{ problem: string | null; code?: string }> {
  const text = await res.text();
  let body: { error?: { code?: unknown; message?: unknown }; predictions?: unknown };
  try {
    body = JSON.parse(text);
  } catch {
    return { problem: `status ${res.status} with a body that is not JSON: ${text.slice(0, 80)}` };
  }
  if (res.status === 200) {
    if (!Array.isArray(body.predictions)) return { problem: "200 without predictions" };
    return { problem: null };
  }
  const code = String(body.error?.code);
  const message = body.error?.message;
  if (typeof message !== "string" || !/^Cannot /.test(message)) {
    return { problem: `error without a proper message: ${text.slice(0, 120)}`, code };
  }
  if (LEAK.test(message)) return { problem: `message shows internals: ${message}`, code };
  if (c.mustSucceed) return { problem: `unmutated image answered ${res.status} ${code}`, code };
  if (res.status === 503) {
    const ok = options.allow503 && (code === "overloaded" || code === "timeout") &&
      res.headers.has("retry-after");
    return { problem: ok ? null : `503 ${code} not under overload`, code };
  }
  if (res.status >= 500 || res.status < 400) {
    return { problem: `status ${res.status} ${code}`, code };
  }
  return { problem: null, code };
}

/** Options of {@linkcode runFuzz}. */
export interface RunOptions {
  /** Server base URL. */
  url: string;
  cases: Iterable<FuzzCase>;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  /** Whether 503 overloaded/timeout is acceptable (default false). */
  allow503?: boolean;
  /** The server's body limit: a few bodies just over it are sent too (expect 413). */
  maxBodyBytes?: number;
  /** Called every 250 cases (e.g. to sample memory). */
  onProgress?: (done: number) => void | Promise<void>;
}

/**
 * Sends every case and checks every answer.
 *
 * @example
 * ```ts
 * const report = await runFuzz({ url: server.url, cases: generateCases(corpus, 2000, 1) });
 * assert.equal(report.violationCount, 0, report.violations.join("\n"));
 * ```
 */
export async function runFuzz(options: RunOptions): Promise<FuzzReport> {
  const started = performance.now();
  const report: FuzzReport = {
    cases: 0,
    statuses: {},
    codes: {},
    violations: [],
    violationCount: 0,
    seconds: 0,
  };
  const note = (problem: string) => {
    report.violationCount++;
    if (report.violations.length < 50) report.violations.push(problem);
  };
  const iterator = options.cases[Symbol.iterator]();
  const allow503 = options.allow503 ?? false;
  const oversize = options.maxBodyBytes;
  let done = 0;
  const worker = async () => {
    for (let next = iterator.next(); !next.done; next = iterator.next()) {
      const c = next.value;
      // Every 200th case also sends a body just over the limit, with a lying Content-Type.
      const cases = oversize && c.id % 200 === 199
        ? [c, {
          ...c,
          mutation: "oversize",
          form: "raw" as const,
          bytes: new Uint8Array(oversize + 1 + c.id),
          mustSucceed: false,
        }]
        : [c];
      for (const one of cases) {
        let res: Response;
        try {
          res = await fetch(toRequest(options.url, one));
        } catch (e) {
          note(`case ${one.id} (${one.source}, ${one.mutation}, ${one.form}): no answer: ${e}`);
          continue;
        }
        const { problem, code } = await checkAnswer(one, res, { allow503 });
        if (one.mutation === "oversize" && res.status !== 413) {
          note(`case ${one.id}: body over the limit answered ${res.status}`);
        }
        report.cases++;
        report.statuses[res.status] = (report.statuses[res.status] ?? 0) + 1;
        if (code) report.codes[code] = (report.codes[code] ?? 0) + 1;
        if (problem) {
          note(
            `case ${one.id} (${one.source}, ${one.mutation}, ${one.form} ${
              one.contentType ?? ""
            }): ${problem}`,
          );
        }
      }
      if (++done % 250 === 0) await options.onProgress?.(done);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
  report.seconds = Math.round((performance.now() - started) / 100) / 10;
  return report;
}

/** Reads the image fixtures (JPEG, PNG, GIF, WebP, BMP) up to `maxBytes` each. */
export async function loadCorpus(maxBytes = Infinity): Promise<Map<string, Uint8Array>> {
  const dir = new URL("../fixtures/", import.meta.url);
  const corpus = new Map<string, Uint8Array>();
  for await (const entry of Deno.readDir(dir)) {
    if (!/\.(jpe?g|png|gif|webp|bmp)$/.test(entry.name) || /_ref\.png$/.test(entry.name)) continue;
    // An arithmetic-coded JPEG: valid, but no decoder here reads it (422 by design), so it
    // cannot be an "unmutated image must succeed" source.
    if (entry.name === "jpeg_arithmetic.jpg") continue;
    const bytes = await Deno.readFile(new URL(entry.name, dir));
    if (bytes.length <= maxBytes) corpus.set(entry.name, bytes);
  }
  return corpus;
}
