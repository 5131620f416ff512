/**
 * Helpers for tests and benches that run the server as a child process:
 * a free loopback port, its output as lines, its memory from /proc.
 */

/** A free TCP port on loopback (closed again before the server takes it). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * Appends `stream`'s text to `out` line by line until it ends, keeping at
 * most `max` lines (the oldest half goes when it is full).
 */
export async function readLines(
  stream: ReadableStream<Uint8Array>,
  out: string[],
  max = 20_000,
): Promise<void> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop() ?? "";
    out.push(...parts);
    if (out.length > max) out.splice(0, out.length - max / 2);
  }
  if (rest) out.push(rest);
}

/** Reads VmRSS and VmHWM (peak) of a process, bytes (Linux); zeros elsewhere. */
export async function processMemory(pid: number): Promise<{ rss: number; peak: number }> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const kb = (key: string) =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb("VmRSS"), peak: kb("VmHWM") };
  } catch {
    return { rss: 0, peak: 0 };
  }
}
