/**
 * Peak RSS of the server process while serving, per model: starts main.ts
 * on a loopback port, waits for /readyz, sends 20 /predict requests, then
 * reads the child's VmHWM (peak resident set) from /proc. The flags are the
 * server's defaults except where a row names them (--backend auto tries WebGPU
 * first, then falls back to wasm), and so are its permissions: those of
 * `deno task start`, not -A (with -A the server may read /dev and skip a
 * WebGPU probe that `deno task start` makes; src/runtime/_gpu_nodes.ts).
 *
 *   deno run -A bench/rss.ts
 */
const INT8 = ["--model", "models/alexnet-synthetic-int8.onnx"];
/** The permissions of `deno task start` (deno.json). */
const START_PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
];
const MODELS: [string, string[]][] = [
  ["fp32 synthetic", ["--model", "synthetic"]],
  ["int8 synthetic (our kernels, 2 threads)", [...INT8, "--threads", "2"]],
  ["int8 synthetic (our kernels, 1 thread)", [...INT8, "--threads", "1"]],
  ["int8 synthetic (our kernels, 2 threads, --backend wasm)", [
    ...INT8,
    "--threads",
    "2",
    "--backend",
    "wasm",
  ]],
  ["int8 synthetic (onnxruntime-web only)", [...INT8, "--int8", "ort"]],
];
const photo = await Deno.readFile(new URL("../tests/fixtures/chelsea.jpg", import.meta.url));
const kb = (status: string, key: string) =>
  Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);

console.log(
  "| model | peak RSS when ready | RSS when ready | peak RSS after 20 requests | RSS after 20 " +
    "requests |\n|---|---|---|---|---|",
);
for (const [label, args] of MODELS) {
  const port = 18000 + Math.floor(Math.random() * 1000);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...START_PERMISSIONS,
      "main.ts",
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--offline",
      "--log-level",
      "warn",
      ...args,
    ],
    cwd: new URL("..", import.meta.url),
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => (r.body?.cancel(), r.ok),
        () => false,
      );
      if (ok) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const ready = await Deno.readTextFile(`/proc/${child.pid}/status`);
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/predict`, { method: "POST", body: photo });
      if (!res.ok) throw new Error(`${label}: /predict answered ${res.status}`);
      await res.body?.cancel();
    }
    const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
    const mb = (text: string, key: string) => `${(kb(text, key) / 1024).toFixed(0)} MB`;
    console.log(
      `| ${label} | ${mb(ready, "VmHWM")} | ${mb(ready, "VmRSS")} | ${mb(status, "VmHWM")} | ${
        mb(status, "VmRSS")
      } |`,
    );
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}
