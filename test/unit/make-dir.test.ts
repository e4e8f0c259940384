import { mkdtemp, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeDirs } from '../../src/util/make-dir.js';

/** Node's `mkdir(dir, { recursive: true })` never settles for these (it spins a core): each call here must end, quickly. */
const within = <T>(p: Promise<T>, ms = 2000): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still running after ${ms} ms`)), ms).unref())]);

describe('makeDirs: mkdir -p that ends', () => {
  it('below /proc (procfs answers ENOENT for any new name): ENOENT, at once', async () => {
    await expect(within(makeDirs('/proc/kfarm-out/x'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(within(makeDirs('/proc/kfarm-out'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('below a dangling symlink: ENOENT, at once', async () => {
    const top = await mkdtemp(path.join(os.tmpdir(), 'kfarm-mkdir-'));
    await symlink(path.join(top, 'nowhere'), path.join(top, 'dangling'));
    await expect(within(makeDirs(path.join(top, 'dangling', 'out')))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('below a regular file: refused (ENOTDIR or EEXIST), at once', async () => {
    const top = await mkdtemp(path.join(os.tmpdir(), 'kfarm-mkdir-'));
    await writeFile(path.join(top, 'file'), '');
    await expect(within(makeDirs(path.join(top, 'file', 'out')))).rejects.toMatchObject({ code: expect.stringMatching(/^(ENOTDIR|EEXIST)$/) });
    await expect(within(makeDirs(path.join(top, 'file')))).rejects.toMatchObject({ code: 'EEXIST' });
  });

  it('makes every missing level, and is content with a directory (or a link to one) that exists', async () => {
    const top = await mkdtemp(path.join(os.tmpdir(), 'kfarm-mkdir-'));
    await within(makeDirs(path.join(top, 'a', 'b', 'c')));
    expect((await stat(path.join(top, 'a', 'b', 'c'))).isDirectory()).toBe(true);
    await within(makeDirs(path.join(top, 'a', 'b')));
    await symlink(path.join(top, 'a'), path.join(top, 'link'));
    await within(makeDirs(path.join(top, 'link', 'b', 'd')));
    expect((await stat(path.join(top, 'a', 'b', 'd'))).isDirectory()).toBe(true);
  });
});
