import { mkdtemp, mkdir, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { extractTar, packTar, safeRelativePath } from '../../src/executor/archive.js';
import { packSource } from '../../src/source/source-archive.js';

async function rawTar(entries: Array<{ name: string; type?: 'file' | 'symlink' | 'link'; linkname?: string; data?: string }>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(c as Buffer));
  for (const e of entries) {
    if (e.type === 'symlink' || e.type === 'link') pack.entry({ name: e.name, type: e.type, linkname: e.linkname ?? '' });
    else pack.entry({ name: e.name }, e.data ?? '');
  }
  pack.finalize();
  await new Promise<void>((r) => pack.on('end', () => r()));
  return Buffer.concat(chunks);
}

const LIMITS = { maxBytes: 1 << 20, maxEntries: 100, allowSymlinks: true };

describe('extractTar refuses what could escape the tree', () => {
  it('rejects ../ paths', async () => {
    await expect(extractTar(await rawTar([{ name: '../evil', data: 'x' }]), LIMITS, 't')).rejects.toThrow(/\.\./);
  });
  it('rejects absolute paths', async () => {
    await expect(extractTar(await rawTar([{ name: '/etc/passwd', data: 'x' }]), LIMITS, 't')).rejects.toThrow(/absolute/);
  });
  it('rejects symlinks that point outside, and hard links', async () => {
    await expect(extractTar(await rawTar([{ name: 'a', type: 'symlink', linkname: '../../etc/shadow' }]), LIMITS, 't')).rejects.toThrow(/outside/);
    await expect(extractTar(await rawTar([{ name: 'a', type: 'symlink', linkname: '/etc/shadow' }]), LIMITS, 't')).rejects.toThrow(/outside/);
    await expect(extractTar(await rawTar([{ name: 'a', type: 'link', linkname: 'b' }]), LIMITS, 't')).rejects.toThrow(/not allowed/);
  });
  it('refuses symlinks altogether where they are not allowed', async () => {
    await expect(extractTar(await rawTar([{ name: 'a', type: 'symlink', linkname: 'b' }]), { ...LIMITS, allowSymlinks: false }, 't')).rejects.toThrow(/not allowed/);
  });
  it('stops at the size cap', async () => {
    await expect(extractTar(await rawTar([{ name: 'big', data: 'x'.repeat(5000) }]), { ...LIMITS, maxBytes: 1000 }, 't')).rejects.toThrow(/larger than/);
  });
  it('round-trips what packTar wrote, inside links included', async () => {
    const buf = await packTar([
      { path: 'd', type: 'directory', mode: 0o755 },
      { path: 'd/f', type: 'file', mode: 0o644, data: Buffer.from('hi') },
      { path: 'd/l', type: 'symlink', mode: 0o777, linkname: 'f' },
    ]);
    const entries = await extractTar(buf, LIMITS, 't');
    expect(entries.map((e) => [e.path, e.type])).toEqual([
      ['d', 'directory'],
      ['d/f', 'file'],
      ['d/l', 'symlink'],
    ]);
    expect(safeRelativePath('./a//b/')).toBe('a/b');
  });
});

describe('packSource', () => {
  it('gives the same sha256 for the same tree, and carries a link that leaves it as a link (DKMS copies it so)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-src-'));
    await writeFile(path.join(dir, 'dkms.conf'), 'PACKAGE_NAME=x\n');
    await mkdir(path.join(dir, '.git'));
    await writeFile(path.join(dir, '.git', 'HEAD'), 'ref');
    const a = await packSource(dir);
    const b = await packSource(dir);
    expect(a.sha256).toBe(b.sha256);
    expect(a.files).toBe(1); // .git is skipped
    await symlink('/etc/passwd', path.join(dir, 'escape'));
    const withLink = await packSource(dir);
    expect(withLink.files).toBe(2);
    expect(withLink.tar.includes('root:x:0:0')).toBe(false); // /etc/passwd's bytes were not read
  });
});
