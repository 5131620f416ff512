/**
 * `deno task classify <image>...`: the server's answer for files, printed.
 * Same model, preprocessing and top-k as POST /predict; `--json` prints the
 * same JSON objects, one per line.
 *
 * @module
 */
import { type Classification, Classifier } from "../classify/mod.ts";
import { loadClassifier } from "../classify/load.ts";
import { parseConfig } from "../config.ts";
import { ClassifierError } from "../errors.ts";

const USAGE =
  `Usage: deno task classify [--json] [--top-k N] [--model m.onnx --manifest m.json] <image>...`;

/** Renders one answer as aligned text lines. */
export function formatClassification(file: string, result: Classification): string {
  const lines = [`${file}  (${result.model}, ${result.backend}, ${result.timings_ms.total} ms)`];
  if (result.weights.notice) lines.push(`  note: ${result.weights.notice}`);
  for (const p of result.predictions) {
    lines.push(
      `  ${(p.score * 100).toFixed(2).padStart(6)}%  ${String(p.index).padStart(4)}  ${p.label}`,
    );
  }
  return lines.join("\n");
}

/** Classifies each file; returns the process exit code (1 if any file failed). */
export async function classifyFiles(
  classifier: Classifier,
  files: string[],
  options: { json: boolean; topK: number },
): Promise<number> {
  let status = 0;
  for (const file of files) {
    try {
      const result = await classifier.classify(
        await Deno.readFile(file),
        Math.min(options.topK, classifier.classes),
      );
      console.log(
        options.json ? JSON.stringify({ file, ...result }) : formatClassification(file, result),
      );
    } catch (e) {
      status = 1;
      const error = e instanceof ClassifierError
        ? { code: e.code, message: e.message }
        : { code: "internal", message: `Cannot read ${file}: ${(e as Error).message}` };
      if (options.json) console.log(JSON.stringify({ file, error }));
      else console.error(`${file}: ${error.message}`);
    }
  }
  return status;
}

if (import.meta.main) {
  let config;
  try {
    config = parseConfig(Deno.args, (k) => Deno.env.get(k));
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    Deno.exit(2);
  }
  if (config.positionals.length === 0) {
    console.error(USAGE);
    Deno.exit(2);
  }
  let classifier: Classifier;
  try {
    classifier = await loadClassifier({ ...config, log: (l) => console.error(l) });
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(1);
  }
  const code = await classifyFiles(classifier, config.positionals, config);
  await classifier.release();
  Deno.exit(code);
}
