import { describe, expect, it } from 'vitest';
import { holderIsGone, holderName } from '../../src/queue/job-holder.js';

const self = '100:5000';
const dead = () => ({ alive: false, startTime: undefined });
const running = (startTime: string) => () => ({ alive: true, startTime });

describe("holderIsGone: whether a running job's worker is a process of this host that is gone", () => {
  it('names the worker by host and instance', () => {
    expect(holderName('farm1', '42:777')).toBe('farm1/42:777');
  });

  it('a dead pid of this host: gone', () => {
    expect(holderIsGone('farm1/42:777', 'farm1', dead, self)).toBe(true);
  });

  it('a recycled pid (alive, another start time): gone; the same start time: not gone', () => {
    expect(holderIsGone('farm1/42:777', 'farm1', running('999'), self)).toBe(true);
    expect(holderIsGone('farm1/42:777', 'farm1', running('777'), self)).toBe(false);
  });

  it('this very process: never gone', () => {
    expect(holderIsGone(`farm1/${self}`, 'farm1', dead, self)).toBe(false);
  });

  it('another host, an unnamed worker or a name that is not ours: not judged here', () => {
    expect(holderIsGone('farm2/42:777', 'farm1', dead, self)).toBe(false);
    expect(holderIsGone(undefined, 'farm1', dead, self)).toBe(false);
    expect(holderIsGone('', 'farm1', dead, self)).toBe(false);
    expect(holderIsGone('farm1/', 'farm1', dead, self)).toBe(false);
    expect(holderIsGone('farm1/abc', 'farm1', dead, self)).toBe(false);
    expect(holderIsGone('farm1/0:1', 'farm1', dead, self)).toBe(false);
    expect(holderIsGone('/42:777', '', dead, self)).toBe(false);
  });
});
