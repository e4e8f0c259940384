import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { lockNote, tryLockFile } from '../../src/process/file-lock.js';

const lockFile = async () => path.join(await mkdtemp(path.join(os.tmpdir(), 'kfarm-lock-')), 'start.lock');

describe('tryLockFile (a kernel lock, not a file that says who holds it)', () => {
  it('grants one holder at a time, even to two opens in one process, and records the note', async () => {
    const file = await lockFile();
    const first = await tryLockFile(file, 'first');
    expect(first).toBeDefined();
    expect(await tryLockFile(file, 'second')).toBeUndefined();
    expect(await lockNote(file)).toBe('first');
    await first?.release();
    const next = await tryLockFile(file, 'next');
    expect(next).toBeDefined();
    expect(await lockNote(file)).toBe('next');
    await next?.release();
  });

  it('is free again once its holder is killed, whatever the file says', async () => {
    const file = await lockFile();
    const script = `
      const fs = require('node:fs');
      const fd = fs.openSync(process.argv[1], 'a+');
      if (!require('fs-native-extensions').tryLock(fd)) process.exit(3);
      console.log('locked');
      setInterval(() => {}, 1000);`;
    const holder = execa('node', ['-e', script, file], { cwd: process.cwd() });
    await new Promise<void>((resolve, reject) => {
      holder.stdout?.once('data', () => resolve());
      holder.catch(reject);
    });
    expect(await tryLockFile(file, 'while held'), 'another process holds it').toBeUndefined();
    holder.kill('SIGKILL');
    await holder.catch(() => undefined);
    await writeFile(file, '999999'); // a note naming some pid means nothing to the lock
    const lock = await tryLockFile(file, 'after');
    expect(lock).toBeDefined();
    await lock?.release();
  });
});
