import type { AvailableRow } from '../archive/available.js';
import { stageOfRelease, type ReleaseStage } from '../matrix/release-stages.js';

/**
 * Pure: the rows `kfarm kernels` prints. Each says its stage, so a kernel of testing, unstable
 * or experimental (whose kernels come and go, and do not ship yet) is never mistaken for a
 * released one: `--kernels all,!stage:pre-release` leaves them out of a build.
 */
export const HELD_HEADERS = ['KERNEL', 'ARCH', 'IMAGE', 'STAGE'] as const;

export function heldRows(images: ReadonlyArray<{ name: string; arch: string; kernels: readonly string[] }>): string[][] {
  return images.flatMap((i) => i.kernels.map((k) => [k, i.arch, i.name, stageOfRelease(i.name)]));
}

export const AVAILABLE_HEADERS = ['KERNEL', 'RELEASE', 'STAGE', 'ARCH', 'FLAVOUR', 'SUITE', 'HEADERS VERSION', 'HELD', 'FETCHABLE'] as const;

/** `kfarm kernels --available`'s rows, as JSON objects (each with its stage) and as table cells. */
export function availableWithStage(rows: readonly AvailableRow[]): Array<AvailableRow & { stage: ReleaseStage }> {
  return rows.map((r) => ({ ...r, stage: stageOfRelease(r.release) }));
}

export function availableCells(rows: ReadonlyArray<AvailableRow & { stage: ReleaseStage }>): string[][] {
  return rows.map((r) => [r.kernel, r.release, r.stage, r.arch, r.flavour, r.suite, r.headersVersion, r.held ? 'held' : '-', r.fetchable ? 'yes' : `no: ${r.reason ?? ''}`]);
}
