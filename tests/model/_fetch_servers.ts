/**
 * Loopback HTTP servers for the download tests, on raw TCP so they can
 * misbehave exactly: honour Range or not, drop the connection halfway, stall,
 * serve other bytes, answer an error status, or never answer. Plus a fetch
 * that refuses anything but loopback, so no test can reach the network.
 */
import { createHash } from "node:crypto";

/** One request a test server saw. */
export interface SeenRequest {
  path: string;
  /** The Range header, or null. */
  range: string | null;
}

/** How a test server behaves. */
export interface ServeOptions {
  /** Honour `Range: bytes=N-` with 206 (default true). */
  range?: boolean;
  /** Close the connection once the body reaches this file offset. */
  dropAt?: number;
  /** Drop only the first this many responses (default: all). */
  dropTimes?: number;
  /** Send up to this file offset, then send nothing more (connection kept open). */
  stallAt?: number;
  /** Answer every request with this status and an empty body. */
  status?: number;
  /** Read the request and never answer. */
  hang?: boolean;
}

/** A running server. */
export interface TestServer {
  /** URL of the file it serves. */
  url: string;
  /** Requests so far. */
  requests: SeenRequest[];
  close(): Promise<void>;
}

const REASONS: Record<number, string> = {
  200: "OK",
  206: "Partial Content",
  404: "Not Found",
  416: "Range Not Satisfiable",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let n = 0;
  while (n < bytes.length) n += await conn.write(bytes.subarray(n));
}

/**
 * Serves `bytes` at http://127.0.0.1:PORT/<name>, one request per
 * connection (`Connection: close`).
 */
export function serveFile(
  bytes: Uint8Array,
  options: ServeOptions = {},
  name = "model.onnx",
): TestServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: SeenRequest[] = [];
  const conns = new Set<Deno.Conn>();
  let release!: () => void;
  const closed = new Promise<void>((r) => (release = r));
  let drops = 0;
  const encoder = new TextEncoder();

  async function handle(conn: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(16384);
    let text = "";
    while (!text.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) return;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    const [requestLine, ...lines] = text.split("\r\n\r\n")[0].split("\r\n");
    const headers = new Map(lines.map((l) => {
      const i = l.indexOf(":");
      return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()] as const;
    }));
    const range = headers.get("range") ?? null;
    requests.push({ path: requestLine.split(" ")[1], range });
    if (options.hang) return await closed;
    const head = (status: number, extra: string[]) =>
      encoder.encode(
        [`HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}`, ...extra, "connection: close"]
          .join("\r\n") + "\r\n\r\n",
      );
    if (options.status) return writeAll(conn, head(options.status, ["content-length: 0"]));
    let start = 0;
    let stop = bytes.length; // exclusive
    let status = 200;
    const extra: string[] = [];
    const m = /^bytes=(\d+)-(\d*)$/.exec(range ?? "");
    if ((options.range ?? true) && m) {
      start = Number(m[1]);
      if (start >= bytes.length) {
        return writeAll(
          conn,
          head(416, [`content-range: bytes */${bytes.length}`, "content-length: 0"]),
        );
      }
      if (m[2]) stop = Math.min(bytes.length, Number(m[2]) + 1);
      status = 206;
      extra.push(`content-range: bytes ${start}-${stop - 1}/${bytes.length}`);
    }
    extra.push(`content-length: ${stop - start}`, "content-type: application/octet-stream");
    await writeAll(conn, head(status, extra));
    let end = stop;
    if (
      options.dropAt !== undefined && options.dropAt < stop &&
      drops < (options.dropTimes ?? Infinity)
    ) {
      drops++;
      end = Math.max(start, options.dropAt);
    }
    if (options.stallAt !== undefined) end = Math.max(start, Math.min(stop, options.stallAt));
    // Several writes, so the client sees the body arrive in chunks.
    for (let i = start; i < end; i += 65536) {
      await writeAll(conn, bytes.subarray(i, Math.min(end, i + 65536)));
    }
    if (options.stallAt !== undefined) await closed;
  }

  const loop = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      handle(conn).catch(() => {}).finally(() => {
        conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed by close() */ }
      });
    }
  })().catch(() => {});

  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/${name}`,
    requests,
    async close() {
      release();
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      await loop;
    },
  };
}

/** A loopback URL nothing listens on (connection refused). */
export function refusedUrl(name = "model.onnx"): string {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return `http://127.0.0.1:${port}/${name}`;
}

/** fetch that throws for anything but loopback: tests never touch the network. */
export const loopbackFetch: typeof fetch = (input, init) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
    return Promise.reject(new Error(`Test tried to reach ${url.host}: only loopback is allowed`));
  }
  return fetch(input, init);
};

/** Seeded pseudo-random bytes (mulberry32). */
export function randomBytes(length: number, seed = 1): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  let a = seed >>> 0;
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (t ^ (t >>> 14)) & 0xff;
  }
  return out;
}

/** The pin of some bytes. */
export function pinOf(bytes: Uint8Array): { bytes: number; sha256: string } {
  return { bytes: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") };
}
