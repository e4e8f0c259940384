import { cp, mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packSource, sourceEntries } from '../../src/source/source-archive.js';
import { example } from '../helpers/kfarm-cli.js';

/** `cd src && kfarm build .`: the out dir (and a state dir) inside the source are kfarm's, never the module's. */
async function treeWithOutputs(): Promise<{ top: string; src: string }> {
  const top = await mkdtemp(path.join(os.tmpdir(), 'kfarm-src-exclude-'));
  const src = path.join(top, 'src');
  await cp(example('hello'), src, { recursive: true });
  return { top, src };
}

describe('packSource leaves the out dir and the state dir out of the source', () => {
  it("the same source hash with or without an earlier build's dist/ and state dir inside it", async () => {
    const { src } = await treeWithOutputs();
    const clean = await packSource(src);
    await mkdir(path.join(src, 'dist', 'logs'), { recursive: true });
    await writeFile(path.join(src, 'dist', 'hello-1.0.0.dkms.tar.gz'), 'an earlier build');
    await mkdir(path.join(src, '.kfarm-state'));
    await writeFile(path.join(src, '.kfarm-state', 'farm.key'), 'secret');
    const exclude = [
      { path: path.join(src, 'dist'), what: '--out dir' },
      { path: path.join(src, '.kfarm-state'), what: 'state dir' },
    ];
    const again = await packSource(src, { exclude });
    expect(again.sha256).toBe(clean.sha256);
    expect(again.excluded).toEqual([
      { path: '.kfarm-state', what: 'state dir' },
      { path: 'dist', what: '--out dir' },
    ]);
    expect((await sourceEntries(again.tar)).map((e) => e.path).filter((p) => p.startsWith('dist') || p.startsWith('.kfarm'))).toEqual([]);
  });

  it('matches the directory, not its spelling: a relative path or one through a symlink', async () => {
    const { top, src } = await treeWithOutputs();
    await mkdir(path.join(src, 'out', 'x'), { recursive: true });
    await symlink(src, path.join(top, 'via-link'));
    const byLink = await packSource(src, { exclude: [{ path: path.join(top, 'via-link', 'out'), what: '--out dir' }] });
    expect(byLink.excluded.map((e) => e.path)).toEqual(['out']);
    const relative = await packSource(src, { exclude: [{ path: path.relative(process.cwd(), path.join(src, 'out')), what: '--out dir' }] });
    expect(relative.excluded.map((e) => e.path)).toEqual(['out']);
  });

  it('a directory of the source that only shares a name is kept', async () => {
    const { top, src } = await treeWithOutputs();
    await mkdir(path.join(src, 'dist'));
    await writeFile(path.join(src, 'dist', 'part.c'), 'int x;');
    await mkdir(path.join(top, 'dist'));
    const packed = await packSource(src, { exclude: [{ path: path.join(top, 'dist'), what: '--out dir' }] });
    expect(packed.excluded).toEqual([]);
    expect((await sourceEntries(packed.tar)).map((e) => e.path)).toContain('dist/part.c');
  });

  it('--out the source directory itself: refused (exit 2), it would pack its own outputs', async () => {
    const { src } = await treeWithOutputs();
    await expect(packSource(src, { exclude: [{ path: src, what: '--out dir' }] })).rejects.toMatchObject({
      code: 'BAD_OPTION',
      message: expect.stringContaining('is the --out dir itself'),
    });
  });
});
