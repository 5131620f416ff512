import assert from "node:assert/strict";

const STATIC = new URL("../../static/", import.meta.url);
/** The page's own HTML + JS + CSS (onnxruntime-web and the model for in-browser mode not counted). */
const BUDGET = 100 * 1024;

async function pageFiles(): Promise<{ name: string; text: string }[]> {
  const files = [];
  for await (const entry of Deno.readDir(STATIC)) {
    if (entry.isFile && /\.(html|js|css)$/.test(entry.name)) {
      files.push({ name: entry.name, text: await Deno.readTextFile(new URL(entry.name, STATIC)) });
    }
  }
  return files;
}

Deno.test("the page's own HTML, JS and CSS weigh at most 100 KB", async () => {
  const files = await pageFiles();
  const bytes = files.reduce((a, f) => a + new TextEncoder().encode(f.text).length, 0);
  assert.ok(files.some((f) => f.name === "index.html"));
  assert.ok(bytes <= BUDGET, `the page weighs ${bytes} bytes, over ${BUDGET}`);
});

Deno.test("the page loads nothing from other origins (no CDN)", async () => {
  for (const { name, text } of await pageFiles()) {
    // src/href attributes, CSS url(), ES imports.
    const refs = [
      ...text.matchAll(/\b(?:src|href)\s*=\s*"([^"]*)"/g),
      ...text.matchAll(/url\(\s*["']?([^"')]*)/g),
      ...text.matchAll(/\bimport\s*(?:[^"'()]*from\s*)?\(?\s*["'`]([^"'`]*)/g),
    ].map((m) => m[1]);
    for (const ref of refs) {
      assert.doesNotMatch(ref, /^(?:[a-z]+:)?\/\//i, `${name} refers to ${ref}`);
    }
  }
});

Deno.test("every element the scripts look up by id is in the page", async () => {
  const files = await pageFiles();
  const html = files.find((f) => f.name === "index.html")!.text;
  const ids = new Set([...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]));
  for (const { name, text } of files.filter((f) => f.name.endsWith(".js"))) {
    for (const [, id] of text.matchAll(/\$\("([^"]+)"\)/g)) {
      // app.js makes #preview-img itself.
      if (id !== "preview-img") assert.ok(ids.has(id), `${name} looks up #${id}`);
    }
  }
});
