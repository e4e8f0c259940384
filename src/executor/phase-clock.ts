import { performance } from 'node:perf_hooks';

/**
 * Milliseconds spent in each named phase of a container's life, in order: what the worker
 * adds on top of the build itself (create, attach, start, ... remove), so it can be measured.
 * `done` is the live object: phases marked after it was handed out (the removal) still land in it.
 */
export class PhaseClock {
  readonly done: Record<string, number> = {};
  private last = performance.now();

  mark(phase: string): void {
    const now = performance.now();
    this.done[phase] = Math.round((now - this.last) * 10) / 10;
    this.last = now;
  }
}
