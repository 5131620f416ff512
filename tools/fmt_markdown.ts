/**
 * Markdown as `deno fmt` writes it, so a generated file passes `deno fmt --check` as written
 * (BENCHMARKS.md, THIRD_PARTY_NOTICES.md).
 *
 * @module
 */

/** Formats Markdown text with `deno fmt` (the repository's settings). */
export async function formatMarkdown(text: string, cwd: URL): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext", "md", "-"],
    cwd,
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  if (!out.success) throw new Error("Cannot format Markdown: deno fmt failed");
  return new TextDecoder().decode(out.stdout);
}
