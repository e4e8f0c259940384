import type { SyncCounts, SyncOutput } from '../images/image-sync.js';
import type { CliContext } from './context.js';
import { estimateRemainingMs } from './progress-estimate.js';
import { formatDuration } from './render.js';

/**
 * What `kfarm images sync` prints while it adds kernels. On a terminal: one status line
 * redrawn in place (added / running / queued / failed, elapsed, an estimate of what is left),
 * failures and the plan as permanent lines. Off a terminal (CI logs): one plain line per
 * finished kernel, no status.
 */
export function syncProgress(ctx: CliContext): { output: SyncOutput; done: () => void } {
  const live = ctx.live();
  return {
    output: {
      say: (line, kind) => {
        if (live.tty && kind === 'added') return; // the status counts it
        if (live.tty) live.line(line);
        else ctx.progress(line);
      },
      progress: (counts) => live.status(syncStatusText(counts)),
    },
    done: () => live.done(),
  };
}

/** Pure: the status line, with the same pace estimate as kfarm build's (progress-estimate.ts). */
export function syncStatusText(c: SyncCounts): string {
  const left = estimateRemainingMs(c.added + c.failed, c.total, c.elapsedMs);
  const estimate = left === undefined ? '' : `, about ${formatDuration(left)} left`;
  return `sync: ${c.added} added, ${c.running} running, ${c.queued} queued, ${c.failed} failed of ${c.total}; ${formatDuration(c.elapsedMs)}${estimate}`;
}
