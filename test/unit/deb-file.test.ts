import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { arMembers, debFile } from '../../src/archive/deb-file.js';
import { tempDir } from '../helpers/kfarm-cli.js';

/** A real .deb made by dpkg-deb -b (compressor `z`) holding ./bin/busybox and ./usr/share/doc/x/README. */
async function makeDeb(compressor: 'xz' | 'gzip' | 'none', busybox: Buffer): Promise<Buffer> {
  const dir = await tempDir('deb-file');
  const root = path.join(dir, 'root');
  await mkdir(path.join(root, 'DEBIAN'), { recursive: true });
  await mkdir(path.join(root, 'bin'));
  await mkdir(path.join(root, 'usr/share/doc/x'), { recursive: true });
  await writeFile(path.join(root, 'DEBIAN/control'), 'Package: x\nVersion: 1\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: t\n');
  await writeFile(path.join(root, 'bin/busybox'), busybox, { mode: 0o755 });
  await writeFile(path.join(root, 'usr/share/doc/x/README'), 'odd-sized so the ar member needs padding\n');
  await execa('dpkg-deb', ['--root-owner-group', `-Z${compressor}`, '-b', root, path.join(dir, 'x.deb')]);
  return readFile(path.join(dir, 'x.deb'));
}

describe('debFile (a .deb read in Node: ar, then data.tar)', () => {
  const busybox = Buffer.concat([Buffer.from('\x7fELF'), Buffer.alloc(4097, 7)]); // odd size: padded members

  it.each(['xz', 'gzip', 'none'] as const)('returns ./bin/busybox of a dpkg-deb -Z%s package, byte for byte', async (z) => {
    const deb = await makeDeb(z, busybox);
    expect([...arMembers(deb).keys()].slice(0, 2)).toEqual(['debian-binary', expect.stringMatching(/^control\.tar/)]);
    expect(await debFile(deb, './bin/busybox', 'x.deb')).toEqual(busybox);
    expect((await debFile(deb, 'usr/share/doc/x/README', 'x.deb'))?.toString()).toBe('odd-sized so the ar member needs padding\n');
  });

  it('is undefined for a file the package does not hold, and refuses what is no .deb', async () => {
    const deb = await makeDeb('xz', busybox);
    expect(await debFile(deb, './bin/cp', 'x.deb')).toBeUndefined();
    await expect(debFile(Buffer.from('PK\x03\x04 a zip'), './bin/busybox', 'y.deb')).rejects.toMatchObject({ code: 'UNSAFE_ARCHIVE' });
    await expect(debFile(deb.subarray(0, deb.length - 100), './bin/busybox', 'cut.deb')).rejects.toMatchObject({ code: 'UNSAFE_ARCHIVE' });
  });
});
