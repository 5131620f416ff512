/**
 * Writes THIRD_PARTY_NOTICES.md: what the project fetches or redistributes that others
 * made (the zoo models, the ImageNet labels) and every npm package in deno.lock with the
 * license its package.json declares. `--check` fails when the file is out of date.
 *
 *   deno task notices [--check]
 *
 * @module
 */
import { formatMarkdown } from "./fmt_markdown.ts";
const ROOT = new URL("..", import.meta.url);

const HEAD = `# Third-party notices

alexnet-edge is MIT-licensed (LICENSE). It fetches, bundles or runs the following, each under
its own license.

## Fetched at run time (never committed)

- **ONNX Model Zoo AlexNet** (\`bvlcalexnet-12*.onnx\`, fetched by \`deno task model:fetch\`):
  the Caffe BVLC AlexNet as published by the ONNX Model Zoo (github.com/onnx/models), BSD-3-Clause.
  The weights were trained by the Berkeley Vision and Learning Center on ImageNet; check the
  ImageNet terms of use for what you do with predictions.
- **torchvision AlexNet** (optional, exported by the user from torchvision), BSD-3-Clause.

## Committed data

- \`models/imagenet_labels.json\`: the 1000 ILSVRC 2012 class names, taken from the class list of
  the npm package \`@tensorflow-models/mobilenet\` 2.1.1, Apache-2.0.

## npm packages (deno.lock)

The server imports hono, @hono/zod-openapi, zod, onnxruntime-web, onnx-proto, exifr,
@jsquash/webp and imagescript (used under its MIT option); onnxruntime-node for the native
backend; playwright-core and autocannon only in tests and benchmarks. Every package the lockfile
holds, with the license its package.json declares:

| package | version | license |
| --- | --- | --- |
`;

async function packageLicense(name: string, version: string): Promise<string> {
  const dir = `node_modules/.deno/${name.replace("/", "+")}@${version}/node_modules/${name}`;
  try {
    const pkg = JSON.parse(await Deno.readTextFile(new URL(`${dir}/package.json`, ROOT)));
    const lic = pkg.license ?? pkg.licenses;
    if (typeof lic === "string") return lic;
    if (Array.isArray(lic)) return lic.map((l) => l.type).join(" OR ");
    return lic?.type ?? "not declared";
  } catch {
    return "not installed here (run deno install)";
  }
}

async function render(): Promise<string> {
  const lock = JSON.parse(await Deno.readTextFile(new URL("deno.lock", ROOT)));
  const rows: string[] = [];
  for (const key of Object.keys(lock.npm ?? {}).sort()) {
    // "name@version" or "name@version_peer@version": scoped names start with "@".
    const at = key.indexOf("@", 1);
    const name = key.slice(0, at), version = key.slice(at + 1).split("_")[0];
    rows.push(`| ${name} | ${version} | ${await packageLicense(name, version)} |`);
  }
  return await formatMarkdown(HEAD + rows.join("\n") + "\n", ROOT);
}

if (import.meta.main) {
  const url = new URL("THIRD_PARTY_NOTICES.md", ROOT);
  const text = await render();
  const now = await Deno.readTextFile(url).catch(() => "");
  if (Deno.args.includes("--check")) {
    if (now !== text) {
      console.error("THIRD_PARTY_NOTICES.md is out of date: run deno task notices");
      Deno.exit(1);
    }
  } else if (now !== text) await Deno.writeTextFile(url, text);
}
