import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { isAlive } from '../../src/process/pid.js';

describe('isAlive', () => {
  it('is true for a running process and false for a zombie nobody reaps', async () => {
    // bash forks a short sleep, then becomes a long one that never reaps it: a zombie.
    const parent = execa('bash', ['-c', 'sleep 1 & echo $!; exec sleep 10'], { reject: false });
    const pid = await new Promise<number>((resolve) => parent.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    expect(isAlive(pid)).toBe(true);
    await new Promise((r) => setTimeout(r, 2000));
    expect(isAlive(pid)).toBe(false);
    expect(isAlive(parent.pid ?? 0)).toBe(true);
    parent.kill();
    await parent;
  });
});
