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
import { readdirSync } from "node:fs";
import process from "node:process";

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
  platform: string = process.platform,
  list: ListDir = (path) => readdirSync(path),
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
