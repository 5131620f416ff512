/**
 * The HTTP half of the hostile corpus: requests that cost the server through
 * their shape, not their pixels. Big BYTES batches (JSON and binary, honest
 * or lying shapes), empty elements by the hundred thousand, slow bodies
 * (stalled or trickling) and slow headers, each sent against a running
 * server while a normal /predict goes beside it. Sizes are parameters: small
 * in `deno task test`, the hostile report's in `deno task fuzz`.
 *
 * Slow headers are recorded, not refused: `Deno.serve` has no header
 * timeout, so a client sending a header line every few seconds keeps its
 * connection; a proxy in front must cut it (see docs/security.md).
 *
 * @module
 */

/** Sizes of the corpus. */
export interface HttpCorpusOptions {
  /** Base URL of the server. */
  url: string;
  /** Model name for /v2 infer. */
  model: string;
  /** An image /predict takes, for the normal request beside each attack. */
  photo: Uint8Array;
  /** A tiny valid image, repeated in the big batches. */
  tinyImage: Uint8Array;
  /** Elements of the big BYTES batches (the report: 136,000 in 10 MB). */
  batch: number;
  /** Empty elements (the report: 300,000). */
  empties: number;
  /** Slow clients at once (the report: 32). */
  slowClients: number;
  /** How long each slow-header client keeps sending header lines, in ms. */
  slowHeaderMs: number;
  /** The server's --body-read-timeout, in ms: a trickle lasts past it. */
  bodyReadMs: number;
}

/** What one case saw. */
export interface HttpCaseResult {
  name: string;
  /** Status of each attacking request ("open" for a connection the server kept). */
  statuses: string[];
  /** Statuses the case allows. */
  allowed: string[];
  /** Status of the normal /predict sent during the attack. */
  normal: number;
  /** It answered before the attack ended. */
  normalFirst: boolean;
  /** Milliseconds of the attack, and of the normal request. */
  ms: number;
  normalMs: number;
}

const enc = (s: string) => new TextEncoder().encode(s);

function base64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** A /v2 infer request for BYTES `elements` with `shape`, as JSON or the binary extension. */
function bytesRequest(
  url: string,
  model: string,
  name: string,
  elements: Uint8Array[],
  shape: number[],
  binary: boolean,
): Request {
  const target = `${url}/v2/models/${model}/infer`;
  if (!binary) {
    const data = elements.map(base64);
    const body = JSON.stringify({ inputs: [{ name, datatype: "BYTES", shape, data }] });
    return new Request(target, {
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
    });
  }
  const size = elements.reduce((n, e) => n + 4 + e.length, 0);
  const header = enc(JSON.stringify({
    inputs: [{ name, datatype: "BYTES", shape, parameters: { binary_data_size: size } }],
  }));
  const body = new Uint8Array(header.length + size);
  body.set(header);
  const view = new DataView(body.buffer);
  let at = header.length;
  for (const e of elements) {
    view.setUint32(at, e.length, true);
    body.set(e, at + 4);
    at += 4 + e.length;
  }
  return new Request(target, {
    method: "POST",
    body,
    headers: {
      "content-type": "application/octet-stream",
      "inference-header-content-length": String(header.length),
    },
  });
}

async function statusOf(request: Request): Promise<string> {
  const res = await fetch(request);
  await res.body?.cancel();
  return String(res.status);
}

/** Opens a connection, sends `head`, then `drip` every `everyMs` until `untilMs`; the status line. */
async function slowConnection(
  url: string,
  head: string,
  drip: { bytes: Uint8Array; everyMs: number; untilMs: number } | undefined,
  graceMs: number,
): Promise<string> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  let stop = false;
  const dripping = (async () => {
    await conn.write(enc(head)).catch(() => {});
    const end = Date.now() + (drip?.untilMs ?? 0);
    while (drip && !stop && Date.now() < end) {
      await new Promise((r) => setTimeout(r, drip.everyMs));
      if (stop) break;
      await conn.write(drip.bytes).catch(() => (stop = true));
    }
  })();
  try {
    const buffer = new Uint8Array(256);
    const read = conn.read(buffer).then((n) => n);
    // A connection the server keeps open for `graceMs` after the drip is reported as "open".
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = () => new Promise<"open">((r) => (timer = setTimeout(() => r("open"), graceMs)));
    const n = await Promise.race([read, dripping.then(() => Promise.race([read, bound()]))]);
    clearTimeout(timer);
    if (n === "open") return "open";
    const line = new TextDecoder().decode(buffer.subarray(0, n ?? 0)).split("\r\n")[0];
    return line.split(" ")[1] ?? "closed";
  } finally {
    stop = true;
    conn.close();
    await dripping;
  }
}

/** The corpus: a name, the statuses it allows, the attack. */
function cases(
  o: HttpCorpusOptions,
  input: string,
): [string, string[], () => Promise<string[]>][] {
  const { url, model } = o;
  const bytes = (elements: Uint8Array[], shape: number[], binary: boolean) =>
    bytesRequest(url, model, input, elements, shape, binary);
  const many = Array<Uint8Array>(o.batch).fill(o.tinyImage);
  const empty = Array<Uint8Array>(o.empties).fill(new Uint8Array(0));
  const one = (r: () => Request) => async () => [await statusOf(r())];
  const slow =
    (head: string, drip?: { bytes: Uint8Array; everyMs: number; untilMs: number }) => () =>
      Promise.all(
        Array.from({ length: o.slowClients }, () => slowConnection(url, head, drip, o.bodyReadMs)),
      );
  const post = (path: string, length: number) =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: ${length}\r\n\r\n`;
  return [
    ["big BYTES batch, JSON", ["413"], one(() => bytes(many, [o.batch], false))],
    ["big BYTES batch, binary", ["413"], one(() => bytes(many, [o.batch], true))],
    ["big BYTES batch, shape [1]", ["413"], one(() => bytes(many, [1], false))],
    ["empty elements, JSON", ["413"], one(() => bytes(empty, [o.empties], false))],
    ["empty elements, binary", ["413"], one(() => bytes(empty, [1], true))],
    ["two empty elements", ["400"], one(() => bytes(empty.slice(0, 2), [2], false))],
    // Headers and 3 bytes of a declared 100 KB body, then nothing.
    ["stalled bodies", ["408"], slow(`${post("/predict", 100_000)}abc`)],
    ["stalled /v2 bodies", ["408"], slow(post(`/v2/models/${model}/infer`, 100_000))],
    // A byte at a time, never idle long enough to be cut for the pause: the read deadline cuts it.
    [
      "trickled bodies",
      ["408"],
      slow(post("/predict", 100_000), {
        bytes: new Uint8Array(1),
        everyMs: 100,
        untilMs: o.bodyReadMs * 3,
      }),
    ],
    // One header line at a time: Deno.serve has no header timeout, so these stay connected.
    [
      "slow headers",
      ["open", "408", "400", "closed"],
      slow("POST /predict HTTP/1.1\r\n", {
        bytes: enc("X-Slow: 1\r\n"),
        everyMs: 200,
        untilMs: o.slowHeaderMs,
      }),
    ],
  ];
}

/**
 * Sends each case with a normal /predict beside it.
 *
 * @example
 * ```ts
 * const results = await runHttpCorpus({ url, model: "tiny-user-model", photo, tinyImage, batch: 2000, empties: 20000, slowClients: 4, slowHeaderMs: 1000, bodyReadMs: 1000 });
 * ```
 */
export async function runHttpCorpus(options: HttpCorpusOptions): Promise<HttpCaseResult[]> {
  const results: HttpCaseResult[] = [];
  const metadata = await (await fetch(`${options.url}/v2/models/${options.model}`)).json();
  for (const [name, allowed, attack] of cases(options, metadata.inputs[0].name)) {
    const start = performance.now();
    let ended = false;
    const attacking = attack().finally(() => (ended = true));
    await new Promise((r) => setTimeout(r, 20)); // the attack is on its way first
    const t0 = performance.now();
    const res = await fetch(`${options.url}/predict`, {
      method: "POST",
      body: options.photo as BodyInit,
      headers: { "content-type": "image/jpeg" },
    });
    await res.body?.cancel();
    const normalMs = performance.now() - t0;
    const normalFirst = !ended;
    const statuses = await attacking;
    results.push({
      name,
      statuses,
      allowed,
      normal: res.status,
      normalFirst,
      ms: Math.round(performance.now() - start),
      normalMs: Math.round(normalMs),
    });
  }
  return results;
}
