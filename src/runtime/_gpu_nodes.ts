/**
 * Whether a Linux machine has a GPU device node for a hardware WebGPU adapter:
 * a DRM render node (`/dev/dri/renderD*`: AMD, Intel, NVIDIA's DRM driver),
 * NVIDIA's own nodes (`/dev/nvidia0`...) or WSL's `/dev/dxg`. Where there is
 * none, `navigator.gpu` can only find a software adapter, which `--backend
 * auto` refuses anyway, and asking for it loads that driver into the process
 * (Mesa's llvmpipe: ~70 MB of RSS that stays; BENCHMARKS.md, int8 RSS).
 * Deno lets a program read `/dev` only under `--allow-all`; without it the
 * answer is "unreadable", and `auto` does not probe either: the default launch
 * must not load a software driver to find out (`--backend=webgpu` asks anyway).
 *
 * @module
 */

/** Lists a folder's entry names; throws when it cannot be read. */
export type ListDir = (path: string) => string[];

/**
 * true: a GPU device node exists; false: Linux without one (skip the probe);
 * "unreadable": Linux, /dev not readable (no permission); undefined: not Linux.
 *
 * @example
 * ```ts
 * if (hasGpuDeviceNode() === false) console.log("no GPU here: wasm");
 * ```
 */
export function hasGpuDeviceNode(
  // Deno's own calls, not node:fs and node:process: this module is in the server's first
  // imports (config.ts), and loading those two costs ~25 ms of start-up.
  platform: string = Deno.build.os,
  list: ListDir = (path) => Array.from(Deno.readDirSync(path), (entry) => entry.name),
): boolean | "unreadable" | undefined {
  if (platform !== "linux") return undefined;
  let dev: string[];
  try {
    dev = list("/dev");
  } catch {
    return "unreadable";
  }
  if (dev.some((name) => name === "dxg" || /^nvidia\d+$/.test(name))) return true;
  if (!dev.includes("dri")) return false;
  try {
    return list("/dev/dri").some((name) => name.startsWith("renderD"));
  } catch {
    return "unreadable";
  }
}

/**
 * Why `auto` must not ask `navigator.gpu` for an adapter here, or undefined: without a GPU
 * device node only a software adapter could answer, which `auto` refuses, and asking would
 * load its driver (llvmpipe: ~70 MB of RSS) for nothing. Known before anything WebGPU loads.
 *
 * @example
 * ```ts
 * const refusal = deviceNodeRefusal({ allowFallbackAdapter: false });
 * if (refusal) console.log(`wasm: ${refusal.message}`);
 * ```
 */
export function deviceNodeRefusal(
  options: { gpu?: unknown; allowFallbackAdapter?: boolean },
  node: () => ReturnType<typeof hasGpuDeviceNode> = hasGpuDeviceNode,
): TypeError | undefined {
  if (options.gpu || options.allowFallbackAdapter) return undefined;
  const found = node();
  if (found === false) {
    return new TypeError(
      "this Linux machine has no GPU device node (/dev/dri/renderD*, /dev/nvidia*, /dev/dxg); " +
        "a software adapter needs --backend=webgpu",
    );
  }
  if (found === "unreadable") {
    return new TypeError(
      "without --allow-all the server cannot see whether this Linux machine has a GPU device " +
        "node, and asking would load a software driver where it has none; " +
        "--backend=webgpu tries the GPU",
    );
  }
  return undefined;
}
