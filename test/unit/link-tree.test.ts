import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { extractTar } from '../../src/executor/archive.js';
import { readSourceTar } from '../../src/source/read-source-tar.js';
import { packSource, sourceEntries } from '../../src/source/source-archive.js';
import { findEscapingLink, findLayoutProblem, resolveLink, type TreeEntry } from '../../src/util/link-tree.js';

const link = (p: string, target: string): TreeEntry => ({ path: p, type: 'symlink', linkname: target });
const dir = (p: string): TreeEntry => ({ path: p, type: 'directory' });
const file = (p: string): TreeEntry => ({ path: p, type: 'file' });

async function rawTar(entries: Array<{ name: string; type?: 'file' | 'symlink' | 'directory' | 'link'; linkname?: string }>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(c as Buffer));
  for (const e of entries) {
    if (e.type === 'symlink' || e.type === 'link') pack.entry({ name: e.name, type: e.type, linkname: e.linkname ?? '' });
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
    const links = new Map([
      ['a', 'b'],
      ['b', '../x'],
    ]);
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
    const buf = await rawTar([
      { name: 'd/', type: 'directory' },
      { name: 'd/l1', type: 'symlink', linkname: '..' },
      { name: 'a', type: 'symlink', linkname: 'd/l1/..' },
    ]);
    await expect(extractTar(buf, { maxBytes: 1 << 20, maxEntries: 100, allowSymlinks: true }, 'chain')).rejects.toThrow('chain: symlink a -> d/l1/.. points outside the tree');
  });

  it('extractTar refuses a loop, and a file written through a link', async () => {
    const limits = { maxBytes: 1 << 20, maxEntries: 100, allowSymlinks: true };
    await expect(
      extractTar(
        await rawTar([
          { name: 'a', type: 'symlink', linkname: 'b' },
          { name: 'b', type: 'symlink', linkname: 'a' },
        ]),
        limits,
        't',
      ),
    ).rejects.toThrow(/loop/);
    await expect(extractTar(await rawTar([{ name: 'l', type: 'symlink', linkname: 'd' }, { name: 'd/', type: 'directory' }, { name: 'l/x' }]), limits, 't')).rejects.toThrow(
      /below the symlink/,
    );
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

describe('findLayoutProblem: what would be written through a link, wherever links point', () => {
  it('accepts links leading out (a source may ship them), refuses entries below a link and a link named twice', () => {
    expect(findLayoutProblem([link('README.gz', '/usr/share/doc/x/README.gz'), link('up', '../../..'), dir('d'), link('d/l1', '..'), link('a', 'd/l1/..')])).toBeUndefined();
    expect(findLayoutProblem([link('l', '/etc'), file('l/passwd')])).toMatch(/l\/passwd lies below the symlink l/);
    expect(findLayoutProblem([file('a'), link('a', '/etc/shadow')])).toMatch(/a appears twice, once as a symlink/);
  });
});

/** A source tree with dkms.conf, and a host dir beside it holding what links lead to. */
async function sourceWithHost(): Promise<{ root: string; host: string }> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'kfarm-links-'));
  const root = path.join(base, 'src');
  const host = path.join(base, 'host');
  await mkdir(root);
  await mkdir(host);
  await writeFile(path.join(root, 'dkms.conf'), 'PACKAGE_NAME=x\n');
  await writeFile(path.join(host, 'secret'), 'HOST-SECRET-BYTES\n');
  return { root, host };
}

describe('packSource carries links that lead out as links, never following them on the host', () => {
  it('packs the chain d/l1 -> .., a -> d/l1/.. as two links', async () => {
    const { root } = await sourceWithHost();
    await mkdir(path.join(root, 'd'));
    await symlink('..', path.join(root, 'd', 'l1'));
    await symlink('d/l1/..', path.join(root, 'a'));
    const entries = await sourceEntries((await packSource(root)).tar);
    expect(entries.filter((e) => e.type === 'symlink').map((e) => [e.path, e.linkname])).toEqual([
      ['a', 'd/l1/..'],
      ['d/l1', '..'],
    ]);
  });

  it('absolute, climbing and dangling links keep their target text; the bytes and entries they lead to are not read', async () => {
    const { root, host } = await sourceWithHost();
    await writeFile(path.join(host, 'inner'), 'INNER-HOST-FILE\n');
    await symlink(path.join(host, 'secret'), path.join(root, 'abs-file')); // an existing host file
    await symlink('/nonexistent/kfarm/README.gz', path.join(root, 'README.gz')); // dangling
    await symlink('../host', path.join(root, 'hostdir')); // a directory outside: not descended into
    await symlink('../../..', path.join(root, 'up'));
    const source = await packSource(root);
    expect(source.tar.includes('HOST-SECRET-BYTES')).toBe(false);
    expect(source.tar.includes('INNER-HOST-FILE')).toBe(false);
    const entries = await sourceEntries(source.tar);
    expect(entries.map((e) => [e.path, e.type, e.linkname])).toEqual([
      ['README.gz', 'symlink', '/nonexistent/kfarm/README.gz'],
      ['abs-file', 'symlink', path.join(host, 'secret')],
      ['dkms.conf', 'file', undefined],
      ['hostdir', 'symlink', '../host'],
      ['up', 'symlink', '../../..'],
    ]);
    // GNU tar (what unpacks it in the container) reads them as links too
    const tarFile = path.join(root, '..', 'source.tar');
    await writeFile(tarFile, source.tar);
    const { stdout } = await promisify(execFile)('tar', ['-tvf', tarFile]);
    expect(stdout).toMatch(/^l\S+ .* README\.gz -> \/nonexistent\/kfarm\/README\.gz$/m);
    expect(stdout).toMatch(/^l\S+ .* hostdir -> \.\.\/host$/m);
    expect(stdout).toMatch(/^l\S+ .* up -> \.\.\/\.\.\/\.\.$/m);
  });

  it('the packed source is the same bytes whatever the links point at (hashing reads no target)', async () => {
    const a = await sourceWithHost();
    const b = await sourceWithHost();
    await symlink('/usr/share/doc/x/README.gz', path.join(a.root, 'README.gz'));
    await symlink('/usr/share/doc/x/README.gz', path.join(b.root, 'README.gz'));
    await symlink('../host/secret', path.join(a.root, 's'));
    await symlink('../host/secret', path.join(b.root, 's'));
    await writeFile(path.join(b.host, 'secret'), 'OTHER CONTENT\n');
    expect((await packSource(a.root)).sha256).toBe((await packSource(b.root)).sha256);
  });

  it('dkms.conf as a link inside the tree is read from the tree; one leading out, looping or to a directory is refused (DKMS_CONF_INVALID)', async () => {
    const inside = await sourceWithHost();
    await mkdir(path.join(inside.root, 'conf'));
    await writeFile(path.join(inside.root, 'conf', 'real.conf'), 'PACKAGE_NAME=inside\n');
    await rm(path.join(inside.root, 'dkms.conf'));
    await symlink('conf/real.conf', path.join(inside.root, 'dkms.conf'));
    expect((await packSource(inside.root)).dkmsConf.toString()).toBe('PACKAGE_NAME=inside\n');

    for (const [target, said] of [
      ['../host/secret', 'leads out of the source tree'],
      ['/etc/passwd', 'leads out of the source tree'],
      ['dkms.conf', 'does not resolve (a loop)'],
      ['.', 'which is not a file of the tree'],
    ] as const) {
      const { root } = await sourceWithHost();
      await rm(path.join(root, 'dkms.conf'));
      await symlink(target, path.join(root, 'dkms.conf'));
      const err = await packSource(root).catch((e: unknown) => e);
      expect(isKfarmError(err, 'DKMS_CONF_INVALID'), String(err)).toBe(true);
      expect(String((err as Error).message)).toContain(`dkms.conf is a symlink (-> ${target}) that`);
      expect(String((err as Error).message)).toContain(said);
      expect(String((err as Error).message)).not.toContain('HOST-SECRET');
    }
  });

  it('refuses a fifo (and any other special file) by name, without opening it', async () => {
    const { root } = await sourceWithHost();
    await promisify(execFile)('mkfifo', [path.join(root, 'pipe')]);
    const err = await packSource(root).catch((e: unknown) => e);
    expect(isKfarmError(err, 'UNSAFE_ARCHIVE'), String(err)).toBe(true);
    expect((err as Error).message).toContain('pipe is a fifo: a module source holds only files, directories and symlinks');
  });
});

describe('readSourceTar: the packed source read back for the full tarball', () => {
  const limits = { maxBytes: 1 << 20, maxEntries: 100 };
  it('keeps links leading out as links', async () => {
    const entries = await readSourceTar(
      await rawTar([
        { name: 'README.gz', type: 'symlink', linkname: '/usr/share/doc/x/README.gz' },
        { name: 'up', type: 'symlink', linkname: '../../..' },
      ]),
      limits,
      'src',
    );
    expect(entries.map((e) => [e.path, e.type, e.linkname])).toEqual([
      ['README.gz', 'symlink', '/usr/share/doc/x/README.gz'],
      ['up', 'symlink', '../../..'],
    ]);
  });

  it('refuses an entry below a link, a hard link, an absolute or .. name, and too many bytes', async () => {
    await expect(readSourceTar(await rawTar([{ name: 'l', type: 'symlink', linkname: '/etc' }, { name: 'l/passwd' }]), limits, 'src')).rejects.toThrow(
      'src: l/passwd lies below the symlink l',
    );
    await expect(readSourceTar(await rawTar([{ name: 'h', type: 'link', linkname: 'dkms.conf' }]), limits, 'src')).rejects.toThrow('link entries are not allowed (h)');
    await expect(readSourceTar(await rawTar([{ name: '/etc/x' }]), limits, 'src')).rejects.toThrow('absolute path');
    await expect(readSourceTar(await rawTar([{ name: 'a/../../x' }]), limits, 'src')).rejects.toThrow('path with ..');
    await expect(readSourceTar(await rawTar([{ name: 'a' }, { name: 'b' }]), { maxBytes: 1, maxEntries: 100 }, 'src')).rejects.toThrow('larger than 1 bytes');
  });

  it('extractTar, which reads what a build hands back, still refuses the same links', async () => {
    const buf = await rawTar([{ name: 'README.gz', type: 'symlink', linkname: '/usr/share/doc/x/README.gz' }]);
    await expect(extractTar(buf, { maxBytes: 1 << 20, maxEntries: 100, allowSymlinks: true }, 'output')).rejects.toThrow(
      'output: symlink README.gz -> /usr/share/doc/x/README.gz points outside the tree',
    );
  });
});
