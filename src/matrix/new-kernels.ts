import { toUnameArch } from './arch-names.js';
import { compareKernels } from './kernel-target.js';

/** A kernel a module was built for: the kernel release and its arch (either name). */
export interface BuiltKernel {
  kernel: string;
  arch: string;
}

const key = (k: BuiltKernel) => `${toUnameArch(k.arch)}/${k.kernel}`;

/** Whether a held kernel is absent from the module's last build (same kernel on another arch counts as new). */
export function isNewKernel(target: BuiltKernel, lastBuilt: readonly BuiltKernel[]): boolean {
  return !lastBuilt.some((b) => key(b) === key(target));
}

/**
 * Pure, for `kfarm build --kernels new`: the held kernels the module's last build in this
 * state dir did not cover, oldest first. Never built: every held kernel is new. Kernels
 * built then and no longer held are simply not in the answer (they are not "new").
 */
export function newKernels<T extends BuiltKernel>(held: readonly T[], lastBuilt: readonly BuiltKernel[]): T[] {
  const built = new Set(lastBuilt.map(key));
  return held.filter((t) => !built.has(key(t))).sort((a, b) => compareKernels(a.kernel, b.kernel) || key(a).localeCompare(key(b)));
}

/**
 * The record a build leaves in the state dir, read back by the next `--kernels new`. It is
 * the union of what earlier builds covered and what this one built (or excluded: an excluded
 * kernel was decided, not missed); failed kernels stay out so they count as new next time.
 */
export interface BuildHistory {
  module: string;
  kernels: BuiltKernel[];
}

export function mergeHistory(previous: BuildHistory | undefined, module: string, covered: readonly BuiltKernel[]): BuildHistory {
  const all = new Map<string, BuiltKernel>();
  for (const k of [...(previous?.kernels ?? []), ...covered]) all.set(key(k), { kernel: k.kernel, arch: toUnameArch(k.arch) });
  return { module, kernels: [...all.values()].sort((a, b) => compareKernels(a.kernel, b.kernel) || a.arch.localeCompare(b.arch)) };
}

/** Reads a history file's text; anything unreadable is "never built" (every kernel new), never an error. */
export function parseHistory(text: string, module: string): BuildHistory | undefined {
  try {
    const data = JSON.parse(text) as unknown;
    if (typeof data !== 'object' || data === null) return undefined;
    const { module: m, kernels } = data as { module?: unknown; kernels?: unknown };
    if (m !== module || !Array.isArray(kernels)) return undefined;
    const valid = kernels.filter(
      (k): k is BuiltKernel => typeof k === 'object' && k !== null && typeof (k as BuiltKernel).kernel === 'string' && typeof (k as BuiltKernel).arch === 'string',
    );
    return { module, kernels: valid.map((k) => ({ kernel: k.kernel, arch: k.arch })) };
  } catch {
    return undefined;
  }
}
