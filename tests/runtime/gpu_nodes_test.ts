import assert from "node:assert/strict";
import { hasGpuDeviceNode, type ListDir } from "../../src/runtime/_gpu_nodes.ts";

/** A fake /dev: folder -> entries; a missing folder throws as readdirSync does. */
function fakeDev(tree: Record<string, string[]>): ListDir {
  return (path) => {
    const entries = tree[path];
    if (!entries) throw new Error(`ENOENT: ${path}`);
    return entries;
  };
}

Deno.test("a DRM render node, an NVIDIA node or WSL's dxg counts as a GPU", () => {
  const drm = fakeDev({ "/dev": ["null", "dri"], "/dev/dri": ["card0", "renderD128"] });
  assert.equal(hasGpuDeviceNode("linux", drm), true);
  assert.equal(hasGpuDeviceNode("linux", fakeDev({ "/dev": ["nvidiactl", "nvidia0"] })), true);
  assert.equal(hasGpuDeviceNode("linux", fakeDev({ "/dev": ["dxg"] })), true);
});

Deno.test("Linux without a render node has no GPU: the WebGPU probe is skipped", () => {
  assert.equal(hasGpuDeviceNode("linux", fakeDev({ "/dev": ["null", "tty", "nvidiactl"] })), false);
  // A display-only card (card0) without a render node cannot run compute.
  const cardOnly = fakeDev({ "/dev": ["dri"], "/dev/dri": ["card0", "by-path"] });
  assert.equal(hasGpuDeviceNode("linux", cardOnly), false);
});

Deno.test("elsewhere the probe runs as before; a Linux /dev that cannot be read is said so", () => {
  assert.equal(hasGpuDeviceNode("darwin", fakeDev({ "/dev": [] })), undefined);
  assert.equal(hasGpuDeviceNode("linux", fakeDev({})), "unreadable");
  assert.equal(hasGpuDeviceNode("linux", fakeDev({ "/dev": ["dri"] })), "unreadable");
});
