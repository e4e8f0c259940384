import type { CheckWindow } from './series-windows.js';

/**
 * Pure: a window as the sentence the report, the API and the dashboard show:
 * "builds on 6.1.0-56-amd64, fails since 6.1.0-57-amd64". Kernel names come from the results
 * (names kfarm gave), so no cleaning is needed here; error text is the caller's to show.
 */
export function windowSentence(w: CheckWindow): string {
  const build = w.check === 'build';
  const works = build ? 'builds' : 'loads';
  const fails = build ? 'fails' : 'load-failed';
  switch (w.state) {
    case 'ok':
      return w.kernels > 1 ? `${works} on every kernel from ${w.oldest} to ${w.newest}` : `${works} on ${w.newest}`;
    case 'broken':
      return `${works} on ${w.lastGood ?? '?'}, ${fails} since ${w.firstBad ?? '?'}`;
    case 'never-built':
      return build ? `fails on every kernel since ${w.firstBad ?? '?'} (never built)` : `load-failed on every kernel since ${w.firstBad ?? '?'} (never loaded)`;
    case 'fixed': {
      const span = w.firstBad === w.lastBad ? `on ${w.firstBad ?? '?'}` : `from ${w.firstBad ?? '?'} to ${w.lastBad ?? '?'}`;
      return `${works} again since ${w.fixedIn ?? '?'} (${build ? 'failed' : 'load-failed'} ${span})`;
    }
  }
}
