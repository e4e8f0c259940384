import { chmod, copyFile, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { currentInstance, ownerIsGone, processStartTime, type OwnerLabels, type PidState } from '../../src/process/instance.js';

describe('process instance', () => {
  it('is this pid and its start time from /proc', () => {
    const start = processStartTime(process.pid);
    expect(start).toMatch(/^\d+$/);
    expect(currentInstance()).toBe(`${process.pid}:${start}`);
    expect(currentInstance()).toBe(currentInstance());
  });

  it('reads the start time past a command name holding spaces and parentheses, and none once the process is gone', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-comm-'));
    const odd = path.join(dir, 'a) (b c');
    await copyFile('/bin/sleep', odd);
    await chmod(odd, 0o755);
    const child = execa(odd, ['30'], { reject: false });
    const pid = child.pid ?? 0;
    await new Promise((r) => setTimeout(r, 200));
    const start = processStartTime(pid);
    expect(start).toMatch(/^\d+$/);
    // started after this test process, so its start time is not earlier
    expect(Number(start)).toBeGreaterThanOrEqual(Number(processStartTime(process.pid)));
    child.kill('SIGKILL');
    await child;
    expect(processStartTime(pid)).toBeUndefined();
  });
});

describe('ownerIsGone (whether an orphan reaper removes a container)', () => {
  const self = '100:5000';
  const alive = (startTime?: string): PidState => ({ alive: true, startTime });
  const dead: PidState = { alive: false, startTime: undefined };
  const cases: Array<[string, OwnerLabels, PidState, boolean]> = [
    ['this very run: kept', { instance: self, pid: '100' }, alive('5000'), false],
    ['an earlier run under this pid (a restarted PID 1): removed', { instance: '100:4000', pid: '100' }, alive('5000'), true],
    ['this pid without an instance (an older kfarm before the restart): removed', { instance: undefined, pid: '100' }, alive('5000'), true],
    ['another process that is dead: removed', { instance: '200:4000', pid: '200' }, dead, true],
    ['another process still running: kept', { instance: '200:4000', pid: '200' }, alive('4000'), false],
    ['a recycled pid (alive, started at another time): removed', { instance: '200:4000', pid: '200' }, alive('6000'), true],
    ['alive, start time unreadable: kept', { instance: '200:4000', pid: '200' }, alive(undefined), false],
    ['alive, owner without /proc (random id): kept', { instance: '200:r1b2c', pid: '200' }, alive('6000'), false],
    ['an older kfarm, its pid alive: kept', { instance: undefined, pid: '200' }, alive('6000'), false],
    ['an older kfarm, its pid dead: removed', { instance: undefined, pid: '200' }, dead, true],
    ['no owner at all: removed', { instance: undefined, pid: undefined }, dead, true],
    ['a garbled pid: removed', { instance: 'x:1', pid: 'x' }, dead, true],
  ];
  it.each(cases)('%s', (_name, owner, state, gone) => {
    expect(ownerIsGone(owner, self, state)).toBe(gone);
  });
});
