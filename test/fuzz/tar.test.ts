import { existsSync, mkdtempSync, readdirSync, lstatSync, readlinkSync, rmSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KfarmError } from '../../src/errors/kfarm-error.js';
import { extractTar, safeRelativePath } from '../../src/executor/archive.js';
import { readSourceTar } from '../../src/source/read-source-tar.js';
import { acceptSource, unpackSource } from '../../src/service/source-upload.js';
import { servicePaths } from '../../src/service/service-paths.js';
import { readTarball } from '../../src/ldtarball/read-tarball.js';
import { planTarball } from '../../src/ldtarball/plan.js';
import { findEscapingLink } from '../../src/util/link-tree.js';
import { isValidName } from '../../src/dkms/names.js';
import { IO_RUNS, RUNS } from './runs.js';

/**
 * Tarballs from outside: built header by header with tar-stream (no normalisation), from names
 * that try every way out (`..`, absolute, `./`, a name below a link, duplicates), links in and
 * out of the tree (symlinks and hard links), and types that have no place in a source.
 */
let root = '';
const outside = () => path.join(root, 'victim');

const NAMES = [
  'dkms.conf',
  'a',
  'a/b',
  'a/b/c',
  'top',
  'top/dkms.conf',
  'top/x.c',
  './a',
  'a/./b',
  '../x',
  '../../victim/f',
  'a/../../x',
  '/abs',
  'l',
  'l/f',
  'l/dkms.conf',
  'top/l/f',
  '',
  '.',
  './',
  'a//b',
];
const TYPES = ['file', 'file', 'file', 'directory', 'symlink', 'symlink', 'link', 'fifo', 'character-device'] as const;
const targets = () =>
  fc.constantFrom('a', 'a/b', '..', '../..', '../victim', '../../victim/f', 'l', '.', '/etc/passwd', `${outside()}/f`, `${outside()}`, 'top/../..', 'b/../../x');
const entry = () =>
  fc.record({
    name: fc.oneof(fc.constantFrom(...NAMES), fc.string({ maxLength: 12 })),
    type: fc.constantFrom(...TYPES),
    data: fc.oneof(fc.constant('PACKAGE_NAME=hello\nPACKAGE_VERSION=1.0\nBUILT_MODULE_NAME[0]=hello\n'), fc.string({ maxLength: 20 })),
    linkname: targets(),
    mode: fc.constantFrom(0o644, 0o755, 0o777, 0o4755, 0o000),
  });
type Entry = { name: string; type: (typeof TYPES)[number]; data: string; linkname: string; mode: number };

async function buildTar(entries: readonly Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const e of entries) {
    const body = e.type === 'file' ? Buffer.from(e.data) : Buffer.alloc(0);
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name: e.name, type: e.type, mode: e.mode, mtime: new Date(0), ...(e.type === 'symlink' || e.type === 'link' ? { linkname: e.linkname } : {}) }, body, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** every path under `dir` with its type, size or link text: what "nothing changed" compares */
function snapshot(dir: string, skip: readonly string[] = []): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      if (skip.includes(p)) continue;
      const st = lstatSync(p);
      out.push(`${path.relative(dir, p)} ${st.isSymbolicLink() ? `-> ${readlinkSync(p)}` : st.isDirectory() ? 'dir' : `${st.size} ${st.mode.toString(8)}`}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

function expectInside(p: string) {
  expect(path.posix.isAbsolute(p)).toBe(false);
  expect(p.split('/')).not.toContain('..');
  expect(p.split('/')).not.toContain('.');
}

/** a tree that can be written as listed: no name twice (but a directory), nothing below a file */
function expectWritable(entries: ReadonlyArray<{ path: string; type: string }>) {
  const kinds = new Map<string, string>();
  for (const e of entries) {
    const before = kinds.get(e.path);
    if (before !== undefined) expect(before === 'directory' && e.type === 'directory').toBe(true);
    kinds.set(e.path, e.type);
  }
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) expect(['directory', 'symlink', undefined]).toContain(kinds.get(parts.slice(0, i).join('/')));
  }
}

const tarCase = fc.oneof(
  fc.array(entry(), { maxLength: 8 }),
  fc.array(entry(), { maxLength: 8 }).map((es) => [{ name: 'dkms.conf', type: 'file' as const, data: 'PACKAGE_NAME=x\nPACKAGE_VERSION=1\n', linkname: '', mode: 0o644 }, ...es]),
);

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'kfarm-fuzz-tar-'));
  mkdirSync(outside());
  writeFileSync(path.join(outside(), 'f'), 'untouched');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('fuzz: tar readers', () => {
  it('safeRelativePath: refuses absolute names and any .. segment; what it returns is plain and relative', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.constantFrom(...NAMES),
          fc.array(fc.constantFrom('a', '.', '..', '', '/', 'b/'), { maxLength: 8 }).map((p) => p.join('/')),
          fc.string(),
        ),
        (name) => {
          let p: string;
          try {
            p = safeRelativePath(name);
          } catch {
            expect(name.startsWith('/') || name.split('/').includes('..')).toBe(true);
            return;
          }
          if (p !== '') {
            expectInside(p);
            expect(p.split('/')).not.toContain('');
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('extractTar: a KfarmError, or entries with plain relative names and links that stay inside (with symlinks allowed)', async () => {
    await fc.assert(
      fc.asyncProperty(tarCase, fc.boolean(), async (entries, allowSymlinks) => {
        const t = await buildTar(entries);
        let got;
        try {
          got = await extractTar(t, { maxBytes: 1 << 20, maxEntries: 100, allowSymlinks }, 'fuzz');
        } catch (err) {
          expect(err).toBeInstanceOf(KfarmError);
          return;
        }
        for (const e of got) {
          expect(e.path).not.toBe('');
          expectInside(e.path);
          expect(['file', 'directory', 'symlink']).toContain(e.type);
          if (e.type === 'symlink') expect(allowSymlinks).toBe(true);
        }
        expect(findEscapingLink(got)).toBeUndefined();
        expectWritable(got);
      }),
      { numRuns: RUNS },
    );
  });

  it('readSourceTar: a KfarmError, or entries with plain names (links kept as text, nothing below a link)', async () => {
    await fc.assert(
      fc.asyncProperty(tarCase, async (entries) => {
        let got;
        try {
          got = await readSourceTar(await buildTar(entries), { maxBytes: 1 << 20, maxEntries: 100 }, 'fuzz');
        } catch (err) {
          expect(err).toBeInstanceOf(KfarmError);
          return;
        }
        for (const e of got) {
          expect(e.path).not.toBe('');
          expectInside(e.path);
        }
        expectWritable(got);
        const links = got.filter((e) => e.type === 'symlink').map((e) => `${e.path}/`);
        for (const e of got) for (const l of links) expect(e.path.startsWith(l)).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it('tar readers on bytes that are not a tar (random, truncated, gzip of garbage): refused or read, never a hang', async () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)),
      fc.tuple(tarCase, fc.nat()).map(async ([es, cut]) => {
        const t = await buildTar(es);
        return t.subarray(0, cut % (t.length + 1));
      }),
    );
    await fc.assert(
      fc.asyncProperty(bytes, async (b) => {
        const input = await b;
        await readSourceTar(input, { maxBytes: 1 << 20, maxEntries: 100 }, 'fuzz').catch((err: unknown) => expect(err).toBeInstanceOf(Error));
        await extractTar(input, { maxBytes: 1 << 20, maxEntries: 100, allowSymlinks: true }, 'fuzz').catch((err: unknown) => expect(err).toBeInstanceOf(Error));
      }),
      { numRuns: RUNS },
    );
  });

  it('acceptSource: refused with a KfarmError, or stored; either way nothing outside its scratch dir and source store changes, and a stored source unpacks again (dkms.conf at its root, nothing outside touched)', async () => {
    const state = () => path.join(root, 'state');
    const scratch = () => path.join(root, 'scratch');
    await fc.assert(
      fc.asyncProperty(tarCase, fc.boolean(), async (entries, gz) => {
        const paths = servicePaths(state());
        mkdirSync(paths.sources, { recursive: true });
        const before = snapshot(root, [scratch(), paths.sources]);
        const body = await buildTar(entries);
        let accepted;
        try {
          accepted = await acceptSource(gz ? gzipSync(body) : body, paths, scratch());
        } catch (err) {
          expect(err).toBeInstanceOf(KfarmError);
        }
        expect(snapshot(root, [scratch(), paths.sources])).toEqual(before);
        expect(readFileSync(path.join(outside(), 'f'), 'utf8')).toBe('untouched');
        // the unpacked tree is removed whatever happened
        if (existsSync(scratch())) expect(readdirSync(scratch())).toEqual([]);
        if (accepted) {
          expect(readdirSync(paths.sources)).toContain(`${accepted.sha256}.tar`);
          const dir = path.join(root, 'unpacked');
          try {
            await unpackSource(paths, accepted.sha256, dir);
            expect(lstatSync(path.join(dir, 'dkms.conf')).isFile()).toBe(true);
            expect(readFileSync(path.join(outside(), 'f'), 'utf8')).toBe('untouched');
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        }
      }),
      { numRuns: IO_RUNS },
    );
  });

  it('ldtarball reader and plan: a KfarmError, or a plan whose every write is a plain relative path under a usable module name', async () => {
    const dkmsNames = fc.constantFrom(
      'dkms_main_tree/',
      'dkms_main_tree/hello/1.0/6.1.0-9-amd64/x86_64/module/hello.ko',
      'dkms_source_tree/',
      'dkms_source_tree/dkms.conf',
      'dkms_binaries_only/',
      'dkms_main_tree/hello/../../x',
    );
    const ldEntry = fc.tuple(entry(), fc.option(dkmsNames)).map(([e, n]) => (n === null ? e : { ...e, name: n }));
    await fc.assert(
      fc.asyncProperty(fc.array(ldEntry, { maxLength: 8 }), fc.boolean(), async (entries, gz) => {
        const file = path.join(root, 'fuzz.dkms.tar.gz');
        const t = await buildTar(entries);
        writeFileSync(file, gz ? gzipSync(t) : t);
        try {
          const plan = planTarball(file, await readTarball(file, { maxBytes: 1 << 20, maxEntries: 100 }));
          expect(isValidName('module name', plan.module)).toBe(true);
          for (const w of [...plan.source, ...plan.kernels.flatMap((k) => k.files)]) expectInside(w.path);
        } catch (err) {
          expect(err).toBeInstanceOf(KfarmError);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
