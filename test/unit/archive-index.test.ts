import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { isKernelBuildPackage, keepStanzas, parseStanzas } from '../../src/archive/deb822.js';
import { compareDebianVersions } from '../../src/archive/debian-version.js';
import { kernelsOffered } from '../../src/archive/discover.js';
import { headersPackages, parseDepends } from '../../src/archive/headers-packages.js';
import { parseReleaseFile } from '../../src/archive/release-file.js';
import { RELEASES, resolveArches, resolveReleases } from '../../src/archive/releases.js';
import { availableRows, availableSummary } from '../../src/archive/available.js';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { packageRoot } from '../../src/paths.js';

const recorded = (name: string) => readFileSync(path.join(packageRoot, 'test', 'fixtures', 'archive', name), 'utf8');
const headersOf = (name: string) => headersPackages(parseStanzas(recorded(name)));

describe('deb822 stanzas', () => {
  it('reads fields case-insensitively, with continuation lines, stanzas split by blank lines', () => {
    const [a, b] = parseStanzas('Package: a\nDescription: one\n two\n\n\nPACKAGE: b\r\nDepends: x\n');
    expect(a?.get('package')).toBe('a');
    expect(a?.get('description')).toBe('one\ntwo');
    expect(b?.get('package')).toBe('b');
    expect(b?.get('depends')).toBe('x');
  });

  it('keeps only the kernel build stanzas of a streamed index', async () => {
    const text =
      'Package: bash\nVersion: 5\n\nPackage: linux-kbuild-6.1\nVersion: 6.1.1\n\nPackage: linux-headers-6.1.0-9-amd64\nVersion: 6.1.1\n\nPackage: linux-image-6.1.0-9-amd64\n';
    const kept = await keepStanzas(createInterface({ input: Readable.from([text]) }), isKernelBuildPackage);
    expect(parseStanzas(kept).map((s) => s.get('package'))).toEqual(['linux-kbuild-6.1', 'linux-headers-6.1.0-9-amd64']);
  });
});

describe('headers ABI packages from recorded indexes', () => {
  it('bullseye main amd64: the 5.10.0-30/-32 ABIs in three flavours, gcc-10 through linux-compiler, no metapackage or -common', () => {
    const pkgs = headersOf('bullseye-amd64.Packages');
    expect(pkgs.map((p) => p.kernel).sort()).toEqual([
      '5.10.0-30-amd64',
      '5.10.0-30-cloud-amd64',
      '5.10.0-30-rt-amd64',
      '5.10.0-32-amd64',
      '5.10.0-32-cloud-amd64',
      '5.10.0-32-rt-amd64',
    ]);
    const p = pkgs.find((k) => k.kernel === '5.10.0-30-amd64');
    expect(p).toMatchObject({
      package: 'linux-headers-5.10.0-30-amd64',
      abi: '5.10.0-30',
      flavour: 'amd64',
      arch: 'amd64',
      version: '5.10.218-1',
      common: 'linux-headers-5.10.0-30-common',
      kbuild: 'linux-kbuild-5.10',
      compiler: { gcc: 10, package: 'linux-compiler-gcc-10-x86' },
      dependsOnImage: false,
      filename: 'pool/main/l/linux/linux-headers-5.10.0-30-amd64_5.10.218-1_amd64.deb',
      size: 1218724,
      sha256: 'ff2629a839f63f3237d1afcc34d9600d0ea43ea6ac9ba7634720275b93daac61',
    });
    expect(pkgs.find((k) => k.flavour === 'rt-amd64')?.common).toBe('linux-headers-5.10.0-30-common-rt');
  });

  it('bullseye-security: the 6.1 "deb11" ABIs next to 5.10', () => {
    const abis = [...new Set(headersOf('bullseye-security-amd64.Packages').map((p) => p.abi))].sort();
    expect(abis).toEqual(['5.10.0-43', '5.10.0-44', '5.10.0-45', '5.10.0-46', '6.1.0-0.deb11.48', '6.1.0-0.deb11.49', '6.1.0-0.deb11.50', '6.1.0-0.deb11.51', '6.1.0-0.deb11.52']);
    const deb11 = headersOf('bullseye-security-amd64.Packages').find((p) => p.kernel === '6.1.0-0.deb11.52-amd64');
    expect(deb11).toMatchObject({ kbuild: 'linux-kbuild-6.1', compiler: { gcc: 10 }, version: '6.1.180-1~deb11u1', source: 'linux-6.1' });
  });

  it('bookworm-security arm64: 6.12+deb12 depends on linux-image and gcc-12, arm64-16k is a flavour, 6.12-arm64 metapackages are out', () => {
    const pkgs = headersOf('bookworm-security-arm64.Packages');
    const p = pkgs.find((k) => k.kernel === '6.12.117+deb12-arm64');
    expect(p).toMatchObject({ abi: '6.12.117+deb12', arch: 'arm64', kbuild: 'linux-kbuild-6.12.117+deb12', compiler: { gcc: 12, package: 'gcc-12' }, dependsOnImage: true });
    expect(new Set(pkgs.map((k) => k.flavour))).toEqual(new Set(['arm64', 'arm64-16k', 'cloud-arm64', 'rt-arm64']));
    expect(pkgs.every((k) => /^\d+\.\d+\.\d+/.test(k.kernel))).toBe(true);
    expect(pkgs.some((k) => k.kernel.startsWith('6.12-') || k.kernel.startsWith('6.1-'))).toBe(false);
  });

  it('trixie-backports amd64: 7.x kernels with gcc-14', () => {
    const pkgs = headersOf('trixie-backports-amd64.Packages');
    expect(pkgs.find((k) => k.kernel === '7.3.4+deb13-amd64')).toMatchObject({ version: '7.3.4-1~bpo13+1', compiler: { gcc: 14, package: 'gcc-14-for-host' } });
  });

  it('parses Depends with alternatives, relations and arch qualifiers', () => {
    expect(parseDepends('a (>= 1), b:amd64 | c (= 2~x), d')).toEqual([
      [{ name: 'a', relation: '>= 1' }],
      [
        { name: 'b', relation: undefined },
        { name: 'c', relation: '= 2~x' },
      ],
      [{ name: 'd', relation: undefined }],
    ]);
  });
});

describe('a release across its suites', () => {
  const indexes = [
    { release: 'debian-11', suite: 'bullseye', baseUrl: 'http://m/debian', arch: 'amd64' as const, text: recorded('bullseye-amd64.Packages') },
    { release: 'debian-11', suite: 'bullseye-security', baseUrl: 'http://m/debian-security', arch: 'amd64' as const, text: recorded('bullseye-security-amd64.Packages') },
  ];

  it('lists each kernel once, newest first, with its suite and the URL of its file', () => {
    const kernels = kernelsOffered(indexes, RELEASES);
    expect(kernels).toHaveLength(33);
    expect(kernels.slice(0, 3).map((k) => k.kernel)).toEqual(['6.1.0-0.deb11.52-amd64', '6.1.0-0.deb11.52-cloud-amd64', '6.1.0-0.deb11.52-rt-amd64']);
    expect(kernels.at(-1)?.kernel).toBe('5.10.0-30-rt-amd64');
    const k = kernels.find((x) => x.kernel === '5.10.0-43-amd64');
    expect(k?.suite).toBe('bullseye-security');
    expect(k?.url).toBe('http://m/debian-security/pool/updates/main/l/linux/linux-headers-5.10.0-43-amd64_5.10.251-5_amd64.deb');
  });

  it('a kernel in two suites is the higher package version, the earlier suite on a tie', () => {
    const same = { release: 'debian-11', baseUrl: 'http://m', arch: 'amd64' as const, text: recorded('bullseye-amd64.Packages') };
    const bumped = same.text.replaceAll('Version: 5.10.218-1', 'Version: 5.10.218-1+b1');
    expect(
      kernelsOffered(
        [
          { ...same, suite: 'bullseye-updates' },
          { ...same, suite: 'bullseye' },
        ],
        RELEASES,
      )[0]?.suite,
    ).toBe('bullseye');
    const picked = kernelsOffered(
      [
        { ...same, suite: 'bullseye' },
        { ...same, suite: 'bullseye-updates', text: bumped },
      ],
      RELEASES,
    );
    expect(picked.find((k) => k.kernel === '5.10.0-30-amd64')).toMatchObject({ suite: 'bullseye-updates', version: '5.10.218-1+b1' });
  });

  it('marks held kernels by kernel and arch, either arch name, and summarises per release and arch', () => {
    const kernels = kernelsOffered(indexes, RELEASES).map((k) => ({
      ...k,
      fetch: k.abi.startsWith('6.1.0-0.deb11') ? { fetchable: false as const, reason: 'HTTP 404' } : { fetchable: true as const },
    }));
    const rows = availableRows(kernels, [
      { kernel: '5.10.0-46-amd64', arch: 'x86_64' },
      { kernel: '5.10.0-46-arm64', arch: 'aarch64' },
    ]);
    expect(rows.filter((r) => r.held).map((r) => r.kernel)).toEqual(['5.10.0-46-amd64']);
    expect(rows.find((r) => r.kernel === '6.1.0-0.deb11.48-amd64')).toMatchObject({ fetchable: false, reason: 'HTTP 404', headersVersion: expect.stringMatching(/~deb11u1$/) });
    expect(availableSummary(rows)).toEqual(['debian-11/amd64: 33 kernels (amd64 11, cloud-amd64 11, rt-amd64 11), 1 held, 15 not fetchable']);
  });
});

describe('InRelease', () => {
  it('gives the date and each index checksum, the PGP armour stripped', () => {
    const file = parseReleaseFile(recorded('bullseye-security.InRelease'));
    expect(file.date).toBe('Sat, 12 Sep 2026 09:27:08 UTC');
    expect(file.codename).toBe('bullseye-security');
    expect(file.sha256.get('main/binary-amd64/Packages.xz')).toEqual({ sha256: 'f8863ad9e81b60ff7056c01764e15c3c6ec9e144ab6874304d0e4349af1a5fb1', size: 474876 });
    expect(file.sha256.has('main/binary-arm64/Packages.xz')).toBe(true);
  });
});

describe('Debian versions', () => {
  it('orders as dpkg does: ~ before anything, digits numerically, revisions after upstream', () => {
    const sorted = ['6.1.180-1', '6.1.180-1~deb11u1', '6.1.9-1', '1:1.0-1', '6.1.180-1+b1', '6.1.180-10'].sort(compareDebianVersions);
    expect(sorted).toEqual(['6.1.9-1', '6.1.180-1~deb11u1', '6.1.180-1', '6.1.180-1+b1', '6.1.180-10', '1:1.0-1']);
    expect(compareDebianVersions('7.3.4-1~bpo13+1', '7.3.4-1~bpo13+1')).toBe(0);
  });
});

describe('releases and arches kfarm has recipes for', () => {
  it('resolves names and codenames, all by default; Debian and uname arch names', () => {
    expect(resolveReleases([]).map((r) => r.name)).toEqual(['debian-11', 'debian-12', 'debian-13']);
    expect(resolveReleases(['trixie', 'debian-13']).map((r) => r.name)).toEqual(['debian-13']);
    expect(resolveArches('x86_64,aarch64,amd64')).toEqual(['amd64', 'arm64']);
    expect(RELEASES.find((r) => r.name === 'debian-11')?.suites.map((s) => s.suite)).toEqual(['bullseye', 'bullseye-security', 'bullseye-updates']);
  });

  it('an unknown release or arch is bad input that lists what exists', () => {
    const caught = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return err;
      }
      return undefined;
    };
    const rel = caught(() => resolveReleases(['debian-10']));
    expect(isKfarmError(rel, 'BAD_OPTION') && rel.hint).toContain('debian-11 (bullseye), debian-12 (bookworm), debian-13 (trixie)');
    const arch = caught(() => resolveArches('riscv64'));
    expect(isKfarmError(arch, 'BAD_OPTION') && arch.hint).toContain('amd64 (x86_64), arm64 (aarch64)');
  });
});
