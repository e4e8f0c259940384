import type { ContainerRuntime } from '../executor/runtime.js';
import type { KfarmImage } from './catalog.js';

/**
 * Removes a kernel's build image: its kfarm/<release>:* tags (so the engine drops the image
 * once no other tag names it). `kfarm images sync --prune` and serve's watch
 * (--prune-gone-after) prune through here.
 */
export async function removeKernelImage(runtime: ContainerRuntime, image: KfarmImage): Promise<{ ok: boolean; tags: string[]; output: string }> {
  const info = await runtime.inspectImage(image.ref);
  const tags = (info?.tags ?? [image.ref]).filter((t) => t.startsWith(`kfarm/${image.name}:`));
  const removed = await runtime.removeImages(tags);
  return { ok: removed.ok, tags, output: removed.output };
}
