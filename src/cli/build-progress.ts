import type { BuildEvent } from '../coordinator/build-types.js';
import { TEXT_LIMITS } from '../util/clean-text.js';
import type { LiveStatus } from './live-status.js';
import { progressLine } from './progress-estimate.js';
import { finishedLine, shown } from './render.js';

/** How often the status redraws with nothing new, so that elapsed and the estimate keep moving. */
const TICK_MS = 1000;

/**
 * What `kfarm build` prints while it runs. Interactive (a terminal): one live status (done,
 * running, queued, failed, elapsed, an estimate left) and a permanent line per failure as it
 * happens. Otherwise (CI logs, pipes): a plain line per finished kernel, no status.
 */
export function buildProgress(live: LiveStatus, interactive: boolean, now: () => number = Date.now): { onEvent: (event: BuildEvent) => void; done: () => void } {
  const startedAt = now();
  let total = 0;
  let done = 0;
  let failed = 0;
  const running = new Set<string>();
  let ticker: NodeJS.Timeout | undefined;

  const redraw = () => {
    if (total === 0) return;
    live.status(progressLine({ done, running: running.size, queued: Math.max(0, total - done - running.size), failed, total, elapsedMs: now() - startedAt }));
  };

  const onEvent = (event: BuildEvent) => {
    switch (event.type) {
      case 'note':
      case 'warning':
        live.line(`${event.type}: ${shown(event.text, TEXT_LIMITS.warning)}`);
        break;
      case 'plan':
        total = event.targets.length;
        live.line(`building ${event.source} for ${total} kernel(s) via ${event.where}`);
        if (interactive && ticker === undefined) ticker = setInterval(redraw, TICK_MS).unref();
        break;
      case 'kernel':
        if (event.state === 'queued') running.delete(event.kernel);
        else running.add(event.kernel);
        // a retry is news (infrastructure trouble); a kernel starting is only a count
        if (event.state === 'retrying') live.line(`[${done}/${total}] ${shown(event.kernel, 128)}: retrying${event.detail ? ` (${shown(event.detail)})` : ''}`);
        break;
      case 'kernel-done':
        running.delete(event.kernel);
        done++;
        if (event.record.verdict === 'failed') failed++;
        if (!interactive || event.record.verdict === 'failed') live.line(finishedLine(done, total, event));
        break;
    }
    redraw();
  };
  return {
    onEvent,
    done: () => {
      if (ticker !== undefined) clearInterval(ticker);
      ticker = undefined;
      live.done();
    },
  };
}
