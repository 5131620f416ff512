/**
 * Run by read_only_test.ts without --allow-write: loads the synthetic AlexNet
 * for the seed given and prints its weights' provenance and the load log.
 */
import { loadClassifier } from "../../src/classify/load.ts";

const lines: string[] = [];
const classifier = await loadClassifier({
  seed: Number(Deno.args[0]),
  threads: 1,
  log: (l) => lines.push(l),
});
const image = await Deno.readFile(new URL("../fixtures/chelsea.jpg", import.meta.url));
const { predictions } = await classifier.classify(image, 1);
console.log(JSON.stringify({ weights: classifier.info.weights, lines, top1: predictions[0] }));
await classifier.release();
