import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseStanzas } from '../../src/archive/deb822.js';
import { headersPackages, type HeadersPackage } from '../../src/archive/headers-packages.js';
import { KfarmError } from '../../src/errors/kfarm-error.js';
import { crossBuildArgs, crossDependencies, crossGcc, crossKernelRecipeHash, crossToolchainHash, crossToolchainRef } from '../../src/images/kernel-recipe.js';
import { packageRoot } from '../../src/paths.js';

/** bookworm-security's arm64 index as recorded (test/fixtures/archive/README.md) */
async function recordedArm64(): Promise<HeadersPackage[]> {
  const text = await readFile(path.join(packageRoot, 'test', 'fixtures', 'archive', 'bookworm-security-arm64.Packages'), 'utf8');
  return headersPackages(parseStanzas(text));
}
const find = (pkgs: HeadersPackage[], kernel: string): HeadersPackage => {
  const pkg = pkgs.find((p) => p.kernel === kernel);
  if (!pkg) throw new Error(`${kernel} is not in the recorded index`);
  return pkg;
};
const url = (pkg: HeadersPackage) => `http://deb.debian.org/debian-security/${pkg.filename}`;

describe('arm64 cross recipe (pure)', () => {
  it('installs the -common and the amd64 kbuild of an arm64 6.1 kernel, never its arm64 compiler', async () => {
    const pkg = find(await recordedArm64(), '6.1.0-53-arm64');
    expect(pkg.arch).toBe('arm64');
    expect(crossDependencies(pkg)).toEqual(['linux-headers-6.1.0-53-common=6.1.187-1', 'linux-kbuild-6.1']);
    expect(crossGcc(pkg)).toBe(12);
  });

  it('leaves out the arm64-only linux-base-<kver> of a 7.x arm64 kernel (apt on amd64 cannot install it), keeping linux-base', () => {
    const dep = (name: string, relation?: string) => [{ name, ...(relation ? { relation } : {}) }];
    const pkg = {
      depends: [
        dep('linux-base', '>= 4.12~'),
        dep('linux-headers-7.3.4+deb13-common', '= 7.3.4-1~bpo13+1'),
        dep('linux-kbuild-7.3.4+deb13', '= 7.3.4-1~bpo13+1'),
        dep('linux-base-7.3.4+deb13-arm64', '= 7.3.4-1~bpo13+1'),
        dep('gcc-14-for-host'),
      ],
    } as unknown as HeadersPackage;
    expect(crossDependencies(pkg)).toEqual(['linux-base', 'linux-headers-7.3.4+deb13-common=7.3.4-1~bpo13+1', 'linux-kbuild-7.3.4+deb13=7.3.4-1~bpo13+1']);
  });

  it('leaves out the kernel image and the compiler of a 6.12 arm64 kernel (rt: its -common-rt)', async () => {
    const pkgs = await recordedArm64();
    const rt = pkgs.find((p) => p.kernel.startsWith('6.12.') && p.flavour === 'rt-arm64');
    expect(rt).toBeDefined();
    const deps = crossDependencies(rt as HeadersPackage);
    expect(deps.some((d) => d.startsWith('linux-image-') || /^gcc-/.test(d))).toBe(false);
    expect(deps).toContain(`${(rt as HeadersPackage).common}=${(rt as HeadersPackage).version}`);
    expect((rt as HeadersPackage).common).toMatch(/-common-rt$/);
    expect(deps.some((d) => d.startsWith('linux-kbuild-6.12.'))).toBe(true);
  });

  it('takes the gcc major from every form of compiler dependency the archive uses', () => {
    for (const [kernel, depends, gcc] of [
      ['5.10.0-30-arm64', 'linux-headers-5.10.0-30-common (= 5.10.218-1), linux-kbuild-5.10 (>= 5.10.218-1), linux-compiler-gcc-10-arm', 10],
      ['7.3.4+deb13-arm64', 'linux-base (>= 4.12~), linux-headers-7.3.4+deb13-common (= 7.3.4-1~bpo13+1), linux-kbuild-7.3.4+deb13, gcc-14-for-host', 14],
      ['6.1.0-0.deb11.52-arm64', 'linux-headers-6.1.0-0.deb11.52-common (= 6.1.180-1~deb11u1), linux-kbuild-6.1 (>= 6.1.180-1~deb11u1), gcc-10', 10],
    ] as const) {
      const stanza = `Package: linux-headers-${kernel}\nVersion: 1\nArchitecture: arm64\nDepends: ${depends}\nFilename: pool/x.deb\nSHA256: ${'ab'.repeat(32)}\n`;
      const [pkg] = headersPackages(parseStanzas(stanza));
      expect(pkg?.kernel).toBe(kernel);
      expect(crossGcc(pkg as HeadersPackage)).toBe(gcc);
      expect(crossDependencies(pkg as HeadersPackage).some((d) => d.includes('gcc'))).toBe(false);
    }
    expect(() => crossGcc({ kernel: '6.1.0-1-arm64', compiler: undefined })).toThrow(KfarmError);
  });

  it('passes the archive entry to the build only when URL, SHA256 and version are plain', async () => {
    const pkg = find(await recordedArm64(), '6.1.0-53-arm64');
    const args = crossBuildArgs('kfarm/debian-12-toolchain:arm64-gcc-12', { ...pkg, url: url(pkg) });
    expect(args).toEqual({
      TOOLCHAIN: 'kfarm/debian-12-toolchain:arm64-gcc-12',
      KERNEL: '6.1.0-53-arm64',
      HEADERS_VERSION: '6.1.187-1',
      HEADERS_URL: `http://deb.debian.org/debian-security/pool/updates/main/l/linux/linux-headers-6.1.0-53-arm64_6.1.187-1_arm64.deb`,
      HEADERS_SHA256: pkg.sha256,
      DEPENDS: 'linux-headers-6.1.0-53-common=6.1.187-1 linux-kbuild-6.1',
    });
    for (const bad of [
      { url: 'http://deb.debian.org/x.deb"; rm -rf /' },
      { url: 'file:///etc/passwd' },
      { sha256: 'ab' },
      { sha256: `${'a'.repeat(63)}$` },
      { version: '1.0 $(id)' },
    ]) {
      expect(() => crossBuildArgs('t', { ...pkg, url: url(pkg), ...bad }), JSON.stringify(bad)).toThrow(KfarmError);
    }
  });

  it('caches the cross toolchain by recipe, release toolchain and gcc, and a kernel image by its exact headers file', async () => {
    expect(crossToolchainRef('debian-11', 10)).toBe('kfarm/debian-11-toolchain:arm64-gcc-10');
    const recipe = Buffer.from('FROM x');
    const t = crossToolchainHash(recipe, 'sha256:t', 12);
    expect(crossToolchainHash(recipe, 'sha256:t', 12)).toBe(t);
    expect(crossToolchainHash(recipe, 'sha256:u', 12)).not.toBe(t);
    expect(crossToolchainHash(recipe, 'sha256:t', 14)).not.toBe(t);
    expect(crossToolchainHash(Buffer.from('FROM y'), 'sha256:t', 12)).not.toBe(t);
    const pkg = find(await recordedArm64(), '6.1.0-53-arm64');
    const k = crossKernelRecipeHash(recipe, 'sha256:c', pkg);
    expect(crossKernelRecipeHash(recipe, 'sha256:c', pkg)).toBe(k);
    expect(crossKernelRecipeHash(recipe, 'sha256:d', pkg)).not.toBe(k);
    expect(crossKernelRecipeHash(recipe, 'sha256:c', { ...pkg, sha256: 'cd'.repeat(32) })).not.toBe(k);
    expect(crossKernelRecipeHash(recipe, 'sha256:c', { ...pkg, version: '6.1.187-2' })).not.toBe(k);
  });
});
