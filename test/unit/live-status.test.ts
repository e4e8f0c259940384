import { describe, expect, it } from 'vitest';
import { liveStatus } from '../../src/cli/live-status.js';

const ESC = '\u001b';

function fakeStream(isTTY: boolean, columns = 80) {
  const chunks: string[] = [];
  const stream = { isTTY, columns, rows: 24, write: (chunk: string) => chunks.push(String(chunk)) > 0 } as unknown as NodeJS.WriteStream;
  return { stream, text: () => chunks.join(''), chunks };
}

describe('liveStatus off a terminal', () => {
  it('prints lines as they are and never a status or an escape sequence', () => {
    const out = fakeStream(false);
    const live = liveStatus(out.stream);
    expect(live.tty).toBe(false);
    live.status('1/3 done');
    live.line('[1/3] k: built');
    live.status('2/3 done');
    live.done();
    live.done();
    live.line('after');
    expect(out.text()).toBe('[1/3] k: built\nafter\n');
  });
});

describe('liveStatus on a terminal', () => {
  it('redraws the status in place and prints lines above it', () => {
    const out = fakeStream(true);
    let clock = 0;
    const live = liveStatus(out.stream, { throttleMs: 100, now: () => clock });
    expect(live.tty).toBe(true);
    live.status('0/3 done');
    clock = 200;
    live.status('1/3 done');
    live.line('failed: k');
    live.done();
    const text = out.text();
    expect(text).toContain('0/3 done');
    expect(text).toContain('1/3 done');
    expect(text).toContain(`${ESC}[2K`); // log-update's erase of the previous status
    // the permanent line survives, and nothing of the status is left after done()
    const lines = text.split('\n');
    expect(lines.some((l) => l.endsWith('failed: k'))).toBe(true);
    expect(text.endsWith(`${ESC}[2K${ESC}[1A${ESC}[2K${ESC}[G`) || text.endsWith(`${ESC}[2K${ESC}[G`)).toBe(true);
  });

  it('throttles: statuses within the interval draw once, the newest wins', async () => {
    const out = fakeStream(true);
    let clock = 1000;
    const live = liveStatus(out.stream, { throttleMs: 50, now: () => clock });
    live.status('a');
    live.status('b');
    live.status('c');
    expect(out.text()).toContain('a');
    expect(out.text()).not.toContain('b');
    clock += 60;
    await new Promise((r) => setTimeout(r, 80));
    expect(out.text()).toContain('c');
    expect(out.text()).not.toContain('b');
    live.done();
  });

  it('cuts a status to one row of the terminal', () => {
    const out = fakeStream(true, 30);
    const live = liveStatus(out.stream, { throttleMs: 0 });
    live.status('x'.repeat(200));
    live.done();
    expect(out.text()).not.toContain('x'.repeat(30));
    expect(out.text()).toContain(`${'x'.repeat(28)}…`);
  });
});
