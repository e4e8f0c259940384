import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { arMembers, debFile } from '../../src/archive/deb-file.js';
import { busyboxOf } from '../../src/packaging/kmm/busybox-static.js';
import { tempDir } from '../helpers/kfarm-cli.js';

/** A real .deb made by dpkg-deb -b (compressor `z`) holding ./bin/busybox and ./usr/share/doc/x/README. */
async function makeDeb(compressor: 'xz' | 'gzip' | 'none', busybox: Buffer, dir_ = 'bin'): Promise<Buffer> {
  const dir = await tempDir('deb-file');
  const root = path.join(dir, 'root');
  await mkdir(path.join(root, 'DEBIAN'), { recursive: true });
  await mkdir(path.join(root, dir_), { recursive: true });
  await mkdir(path.join(root, 'usr/share/doc/x'), { recursive: true });
  await writeFile(path.join(root, 'DEBIAN/control'), 'Package: x\nVersion: 1\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: t\n');
  await writeFile(path.join(root, dir_, 'busybox'), busybox, { mode: 0o755 });
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

describe('busyboxOf (a busybox-static .deb)', () => {
  // the smallest ELF checkStaticElf accepts: 64-bit LE, aarch64 (183), no program headers
  const elf = Buffer.alloc(64);
  elf.writeUInt32BE(0x7f454c46, 0);
  elf[4] = 2;
  elf[5] = 1;
  elf.writeUInt16LE(183, 18);
  elf.writeUInt16LE(56, 54); // e_phentsize; e_phnum 0
  const entry = { package: 'busybox-static', version: '1', url: 'http://m/pool/b.deb', sha256: 'a'.repeat(64), size: 1 };

  it("finds bookworm's ./bin/busybox and trixie's ./usr/bin/busybox (merged /usr)", async () => {
    expect(await busyboxOf(await makeDeb('xz', elf, 'bin'), entry, 'arm64')).toEqual(elf);
    expect(await busyboxOf(await makeDeb('xz', elf, 'usr/bin'), entry, 'arm64')).toEqual(elf);
  });

  it('refuses one of another arch, or a package without it', async () => {
    await expect(busyboxOf(await makeDeb('xz', elf, 'bin'), entry, 'amd64')).rejects.toMatchObject({ message: expect.stringContaining('ELF machine 183, not amd64') });
    await expect(busyboxOf(await makeDeb('xz', elf, 'sbin'), entry, 'arm64')).rejects.toMatchObject({
      message: expect.stringContaining('holds no ./bin/busybox or ./usr/bin/busybox'),
    });
  });
});
