import { mkdtemp, mkdir, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { extractTar } from '../../src/executor/archive.js';
import { packSource } from '../../src/source/source-archive.js';
import { findEscapingLink, resolveLink, type TreeEntry } from '../../src/util/link-tree.js';

const link = (p: string, target: string): TreeEntry => ({ path: p, type: 'symlink', linkname: target });
const dir = (p: string): TreeEntry => ({ path: p, type: 'directory' });
const file = (p: string): TreeEntry => ({ path: p, type: 'file' });

async function rawTar(entries: Array<{ name: string; type?: 'file' | 'symlink' | 'directory'; linkname?: string }>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(c as Buffer));
  for (const e of entries) {
    if (e.type === 'symlink') pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname ?? '' });
    else if (e.type === 'directory') pack.entry({ name: e.name, type: 'directory' });
    else pack.entry({ name: e.name }, 'x');
  }
  pack.finalize();
  await new Promise<void>((r) => pack.on('end', () => r()));
  return Buffer.concat(chunks);
}

describe('findEscapingLink: links are resolved against the tree, not read as text', () => {
  it('refuses the chain d/l1 -> .. plus a -> d/l1/.. (each passes a textual check)', () => {
    expect(findEscapingLink([dir('d'), link('d/l1', '..'), link('a', 'd/l1/..')])).toBe('symlink a -> d/l1/.. points outside the tree');
  });

  it('keeps d/l1 -> .. alone: it resolves to the top of the tree', () => {
    expect(findEscapingLink([dir('d'), link('d/l1', '..')])).toBeUndefined();
    expect(resolveLink(new Map([['d/l1', '..']]), 'd/l1', '..')).toBe('');
  });

  it('follows a -> b, b -> ../x out of the tree, for both links', () => {
    const links = new Map([['a', 'b'], ['b', '../x']]);
    expect(resolveLink(links, 'a', 'b')).toBe('outside');
    expect(findEscapingLink([link('a', 'b'), link('b', '../x')])).toMatch(/points outside the tree/);
  });

  it('refuses loops (a -> b -> a, a -> a) as unresolvable', () => {
    expect(findEscapingLink([link('a', 'b'), link('b', 'a')])).toMatch(/loop/);
    expect(findEscapingLink([link('a', 'a')])).toMatch(/loop/);
    expect(findEscapingLink([dir('d'), link('d/up', '../d/up')])).toMatch(/loop/);
  });

  it('refuses absolute targets, also at the end of a chain', () => {
    expect(findEscapingLink([link('a', '/etc/shadow')])).toMatch(/outside/);
    expect(findEscapingLink([link('a', 'b/x'), link('b', '/etc')])).toMatch(/outside/);
  });

  it('refuses a chain that climbs one level per link', () => {
    // each link alone stays inside: x/y/u -> .. is x, x/v -> ../.. is above the tree only through u
    expect(findEscapingLink([dir('x'), dir('x/y'), link('x/y/u', '..'), link('x/w', 'y/u/../..')])).toMatch(/x\/w -> y\/u\/\.\.\/\.\. points outside/);
  });

  it('refuses an entry that lies below a link (it would be written through it)', () => {
    expect(findEscapingLink([link('l', 'sub'), dir('sub'), file('l/x')])).toMatch(/lies below the symlink l/);
  });

  it('refuses a path named twice when one of them is a link', () => {
    expect(findEscapingLink([link('a', 'b'), file('a')])).toMatch(/appears twice/);
  });

  it('keeps ordinary links inside the tree, through other links and nonexistent parts', () => {
    expect(
      findEscapingLink([dir('src'), file('src/a.c'), link('a.c', 'src/a.c'), link('s', 'src'), link('b.c', 's/../src/a.c'), link('dangling', 'nothere/../src')]),
    ).toBeUndefined();
  });
});

describe('extractTar and packSource use the resolver', () => {
  it('extractTar refuses the chain d/l1 -> .., a -> d/l1/.. (and keeps its textual check)', async () => {
    const buf = await rawTar([{ name: 'd/', type: 'directory' }, { name: 'd/l1', type: 'symlink', linkname: '..' }, { name: 'a', type: 'symlink', linkname: 'd/l1/..' }]);
    await expect(extractTar(buf, { maxBytes: 1 << 20, maxEntries: 100, allowSymlinks: true }, 'chain')).rejects.toThrow('chain: symlink a -> d/l1/.. points outside the tree');
  });

  it('extractTar refuses a loop, and a file written through a link', async () => {
    const limits = { maxBytes: 1 << 20, maxEntries: 100, allowSymlinks: true };
    await expect(extractTar(await rawTar([{ name: 'a', type: 'symlink', linkname: 'b' }, { name: 'b', type: 'symlink', linkname: 'a' }]), limits, 't')).rejects.toThrow(/loop/);
    await expect(extractTar(await rawTar([{ name: 'l', type: 'symlink', linkname: 'd' }, { name: 'd/', type: 'directory' }, { name: 'l/x' }]), limits, 't')).rejects.toThrow(/below the symlink/);
  });

  it('packSource refuses a source tree holding the chain', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'kfarm-chain-'));
    await writeFile(path.join(root, 'dkms.conf'), 'PACKAGE_NAME=x\n');
    await mkdir(path.join(root, 'd'));
    await symlink('..', path.join(root, 'd', 'l1'));
    await symlink('d/l1/..', path.join(root, 'a'));
    await expect(packSource(root)).rejects.toThrow('symlink a -> d/l1/.. points outside the tree');
  });

  it('packSource keeps a tree whose links stay inside', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'kfarm-chain-ok-'));
    await writeFile(path.join(root, 'dkms.conf'), 'PACKAGE_NAME=x\n');
    await mkdir(path.join(root, 'd'));
    await symlink('..', path.join(root, 'd', 'l1'));
    await symlink('d/l1/dkms.conf', path.join(root, 'conf-link'));
    const source = await packSource(root);
    expect(source.files).toBe(4);
  });
});
