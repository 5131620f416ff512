/**
 * Serving one file from disk as a stream, with a validator (size and
 * modification time) so a browser that has it answers 304 instead of
 * downloading a 244 MB model or a 14 MB runtime again.
 *
 * @module
 */
import type { Context } from "hono";

/** Options of {@linkcode serveFile}. */
export interface ServeFileOptions {
  contentType: string;
  /** Default "no-cache": always revalidate (cheap with the ETag). */
  cacheControl?: string;
  /** Extra response headers. */
  headers?: Record<string, string>;
}

/**
 * Answers `url`'s bytes, or 304 when the request's If-None-Match matches, or
 * undefined when the file is missing.
 *
 * @example
 * ```ts
 * return await serveFile(c, new URL("file:///srv/model.onnx"), { contentType: "application/octet-stream" }) ?? c.notFound();
 * ```
 */
export async function serveFile(
  c: Context,
  url: URL,
  options: ServeFileOptions,
): Promise<Response | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(url);
  } catch {
    return undefined;
  }
  if (!info.isFile) return undefined;
  const etag = `W/"${info.size.toString(36)}-${(info.mtime?.getTime() ?? 0).toString(36)}"`;
  const headers: Record<string, string> = {
    "content-type": options.contentType,
    "cache-control": options.cacheControl ?? "no-cache",
    etag,
    ...options.headers,
  };
  const match = c.req.header("if-none-match");
  if (match && match.split(",").some((t) => t.trim() === etag)) {
    return c.body(null, 304, headers);
  }
  headers["content-length"] = String(info.size);
  if (c.req.method === "HEAD") return c.body(null, 200, headers);
  const file = await Deno.open(url, { read: true });
  return c.body(file.readable, 200, headers);
}
