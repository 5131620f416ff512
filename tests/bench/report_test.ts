import assert from "node:assert/strict";
import type { BenchResult } from "../../bench/_results.ts";
import { currentResults, renderPlot, renderReport } from "../../bench/report.ts";

const result = (bench: string, date: string, value: number): BenchResult => ({
  bench,
  title: `${bench} title`,
  date,
  commit: "abc1234",
  machine: "test machine",
  command: `deno task bench:${bench}`,
  notes: [`note of ${date}`],
  tables: [{ caption: "", columns: ["what", "ms"], rows: [["x", value]] }],
  plots: [{ name: bench, title: "T", unit: "ms", bars: [{ label: "x", value }] }],
});

Deno.test("the report keeps only the newest result of each benchmark, in section order", () => {
  const all = [
    result("load", "2026-12-01T10:00Z", 1),
    result("launch", "2026-11-01T10:00Z", 2),
    result("load", "2026-12-07T10:00Z", 3),
  ];
  const current = currentResults(all);
  assert.deepEqual(current.map((r) => [r.bench, r.date]), [
    ["launch", "2026-11-01T10:00Z"],
    ["load", "2026-12-07T10:00Z"],
  ]);
  const text = renderReport(all);
  assert.match(text, /note of 2026-12-07/);
  assert.doesNotMatch(text, /note of 2026-12-01/);
  assert.match(text, /1 older result in bench\/results\//);
  assert.match(text, /commit abc1234 · test machine/);
});

Deno.test("a plot is an SVG with one bar per label, its value and the goal line", () => {
  const svg = renderPlot({
    name: "p",
    title: "Cold <start>",
    unit: "ms",
    bars: [{ label: "a", value: 100 }, { label: "b", value: 300 }],
    goal: { label: "goal", value: 200 },
  });
  assert.match(svg, /^<svg /);
  assert.equal(svg.match(/<rect x=/g)?.length, 2);
  assert.match(svg, /Cold &lt;start&gt;/);
  assert.match(svg, /300 ms/);
  assert.match(svg, /stroke-dasharray/);
});
