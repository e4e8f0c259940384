import { describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { EMPTY_MANIFEST, kernelFlavour, metaVersion, planApt, suiteOfRelease, type AptManifest, type AptPackage } from '../../src/publish/apt-plan.js';
import { compareDebianVersions } from '../../src/archive/debian-version.js';
import { releaseSha256, withAcquireByHash } from '../../src/publish/apt-by-hash.js';

const sha = (c: string) => c.repeat(64);

function bmdeb(kernel: string, opts: { version?: string; release?: string; arch?: string; sha?: string; module?: string } = {}): AptPackage {
  const arch = opts.arch ?? 'amd64';
  const version = opts.version ?? '1.0.0';
  const stem = (opts.module ?? 'hello').replace(/_/g, '-');
  return {
    file: `/out/bmdeb/${stem}-modules-${kernel}_${version}_${arch}.deb`,
    sha256: opts.sha ?? sha('a'),
    size: 100,
    package: `${stem}-modules-${kernel}`,
    version,
    architecture: arch,
    kind: 'bmdeb',
    module: opts.module ?? 'hello',
    moduleVersion: version,
    kernel,
    targets: [{ release: opts.release ?? 'debian-12', arch }],
  };
}

const dkmsDeb = (targets: AptPackage['targets'], architecture = 'all', bytes = 'd', version = '1.0.0'): AptPackage => ({
  file: `/out-${bytes}/dkms-deb/hello-dkms_${version}_${architecture}.deb`,
  sha256: sha(bytes),
  size: 100,
  package: 'hello-dkms',
  version,
  architecture,
  kind: 'dkms-deb',
  module: 'hello',
  moduleVersion: version,
  targets,
});

describe('suites and flavours', () => {
  it('names a suite after the release codename and refuses a release it has none for', () => {
    expect(suiteOfRelease('debian-11')).toBe('bullseye');
    expect(suiteOfRelease('debian-12')).toBe('bookworm');
    expect(suiteOfRelease('debian-13')).toBe('trixie');
    let err: unknown;
    try {
      suiteOfRelease('debian-99');
    } catch (e) {
      err = e;
    }
    expect(isKfarmError(err, 'BAD_OPTION')).toBe(true);
  });

  it.each([
    ['6.1.0-57-amd64', '6.1.0-57', 'amd64'],
    ['6.1.0-57-cloud-amd64', '6.1.0-57', 'cloud-amd64'],
    ['6.12.118+deb12-rt-amd64', '6.12.118+deb12', 'rt-amd64'],
    ['7.3.4+deb13-arm64-16k', '7.3.4+deb13', 'arm64-16k'],
  ])('%s is ABI %s, flavour %s', (kernel, abi, flavour) => {
    expect(kernelFlavour(kernel)).toEqual({ abi, flavour });
  });

  it('metapackage versions grow with the kernel, then with the module version, as dpkg compares', () => {
    const order = [
      metaVersion('6.1.0-9-amd64', '1.0.0'),
      metaVersion('6.1.0-57-amd64', '1.0.0'),
      metaVersion('6.1.0-57-amd64', '1.1.0-2'),
      metaVersion('6.1.0-58-amd64', '0.9'),
      metaVersion('6.12.118+deb12-amd64', '1.0.0'),
    ];
    for (let i = 1; i < order.length; i++) expect(compareDebianVersions(order[i - 1]!, order[i]!), `${order[i - 1]} < ${order[i]}`).toBeLessThan(0);
  });
});

describe('planApt', () => {
  it('puts each package in its release suite, the dkms-deb in every suite of its kernels, and a metapackage per flavour on the newest kernel', () => {
    const plan = planApt(
      [
        bmdeb('6.1.0-56-amd64'),
        bmdeb('6.1.0-57-amd64'),
        bmdeb('6.12.118+deb12-cloud-amd64'),
        bmdeb('6.1.0-57-arm64', { arch: 'arm64' }),
        bmdeb('7.3.4+deb13-amd64', { release: 'debian-13' }),
        dkmsDeb([
          { release: 'debian-12', arch: 'amd64' },
          { release: 'debian-12', arch: 'arm64' },
          { release: 'debian-13', arch: 'amd64' },
        ]),
      ],
      EMPTY_MANIFEST,
    );
    expect(plan.suites).toEqual([
      { codename: 'bookworm', release: 'debian-12', arches: ['amd64', 'arm64'] },
      { codename: 'trixie', release: 'debian-13', arches: ['amd64'] },
    ]);
    expect(plan.add.map((a) => `${a.suite} ${a.pkg.package}`).sort()).toEqual([
      'bookworm hello-dkms',
      'bookworm hello-modules-6.1.0-56-amd64',
      'bookworm hello-modules-6.1.0-57-amd64',
      'bookworm hello-modules-6.1.0-57-arm64',
      'bookworm hello-modules-6.12.118+deb12-cloud-amd64',
      'trixie hello-dkms',
      'trixie hello-modules-7.3.4+deb13-amd64',
    ]);
    expect(plan.metapackages.map((m) => `${m.suite} ${m.package} ${m.architecture} -> ${m.depends.package}`).sort()).toEqual([
      'bookworm hello-modules-amd64 amd64 -> hello-modules-6.1.0-57-amd64',
      'bookworm hello-modules-arm64 arm64 -> hello-modules-6.1.0-57-arm64',
      'bookworm hello-modules-cloud-amd64 amd64 -> hello-modules-6.12.118+deb12-cloud-amd64',
      'trixie hello-modules-amd64 amd64 -> hello-modules-7.3.4+deb13-amd64',
    ]);
  });

  it('a newer kernel published later adds only its package and moves the metapackage to it', () => {
    const first = planApt([bmdeb('6.1.0-56-amd64'), bmdeb('6.1.0-57-amd64')], EMPTY_MANIFEST);
    const manifest = { ...first.manifest, packages: first.manifest.packages.map((p) => (p.kind === 'metapackage' ? { ...p, sha256: sha('m') } : p)) };
    const second = planApt([bmdeb('6.1.0-57-amd64'), bmdeb('6.1.0-58-amd64')], manifest);
    expect(second.add.map((a) => a.pkg.package)).toEqual(['hello-modules-6.1.0-58-amd64']);
    expect(second.present.map((a) => a.pkg.package)).toEqual(['hello-modules-6.1.0-57-amd64']);
    expect(second.metapackages).toHaveLength(1);
    expect(second.metapackages[0]).toMatchObject({
      package: 'hello-modules-amd64',
      kernel: '6.1.0-58-amd64',
      depends: { package: 'hello-modules-6.1.0-58-amd64', version: '1.0.0' },
    });
    expect(compareDebianVersions(second.metapackages[0]!.version, first.metapackages[0]!.version)).toBeGreaterThan(0);
    // nothing new: nothing to add, the metapackage stays
    const third = planApt([bmdeb('6.1.0-56-amd64')], second.manifest);
    expect(third.add).toEqual([]);
    expect(third.metapackages).toEqual([]);
    // an older kernel published after a newer one leaves the metapackage where it is
    const fourth = planApt([bmdeb('6.1.0-50-amd64')], second.manifest);
    expect(fourth.add.map((a) => a.pkg.package)).toEqual(['hello-modules-6.1.0-50-amd64']);
    expect(fourth.metapackages).toEqual([]);
  });

  it('a new module version for the newest kernel moves the metapackage; an older version published again is left out', () => {
    const first = planApt([bmdeb('6.1.0-57-amd64')], EMPTY_MANIFEST);
    const second = planApt([bmdeb('6.1.0-57-amd64', { version: '1.1.0', sha: 'b' })], first.manifest);
    expect(second.add.map((a) => `${a.pkg.package} ${a.pkg.version}`)).toEqual(['hello-modules-6.1.0-57-amd64 1.1.0']);
    expect(second.metapackages.map((m) => m.depends)).toEqual([{ package: 'hello-modules-6.1.0-57-amd64', version: '1.1.0' }]);
    const third = planApt([bmdeb('6.1.0-57-amd64')], second.manifest);
    expect(third.add).toEqual([]);
    expect(third.older.map((o) => o.published)).toEqual(['1.1.0']);
    expect(third.metapackages).toEqual([]);
  });

  it('refuses a published name, version and arch with other bytes, in the repository or given twice', () => {
    const first = planApt([bmdeb('6.1.0-57-amd64')], EMPTY_MANIFEST);
    const refused = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return err;
      }
      return undefined;
    };
    const again = refused(() => planApt([bmdeb('6.1.0-57-amd64', { sha: 'c' })], first.manifest));
    expect(isKfarmError(again, 'PUBLISH_REFUSED'), String(again)).toBe(true);
    expect((again as Error).message).toMatch(/hello-modules-6\.1\.0-57-amd64_1\.0\.0_amd64\.deb is already in the repository \(bookworm\) with other bytes/);
    const twice = refused(() => planApt([bmdeb('6.1.0-57-amd64'), bmdeb('6.1.0-57-amd64', { sha: 'c' })], EMPTY_MANIFEST));
    expect(isKfarmError(twice, 'PUBLISH_REFUSED'), String(twice)).toBe(true);
    // the same bytes again are fine: present, not added
    expect(planApt([bmdeb('6.1.0-57-amd64')], first.manifest).present).toHaveLength(1);
  });
});

const bookworm = [{ release: 'debian-12', arch: 'amd64' }];
/** the manifest as the apply step leaves it (metapackages get their built sha256) */
const applied = (m: AptManifest): AptManifest => ({ ...m, packages: m.packages.map((p) => (p.kind === 'metapackage' ? { ...p, sha256: sha('m') } : p)) });

describe("the dkms-deb of a published version with other kernels' binaries (the rule both publishers follow)", () => {
  it("is held, not refused and not replaced: the published one stays, the new kernel's bmdeb and metapackage go in", () => {
    const first = planApt([bmdeb('6.1.0-57-amd64'), dkmsDeb(bookworm, 'amd64', 'd')], EMPTY_MANIFEST);
    const second = planApt([bmdeb('6.1.0-58-amd64'), dkmsDeb(bookworm, 'amd64', 'e')], applied(first.manifest));
    expect(second.add.map((a) => a.pkg.package)).toEqual(['hello-modules-6.1.0-58-amd64']);
    expect(second.held.map((h) => [h.pkg.file, h.published])).toEqual([['/out-e/dkms-deb/hello-dkms_1.0.0_amd64.deb', 'the repository (bookworm)']]);
    expect(second.metapackages.map((m) => m.depends.package)).toEqual(['hello-modules-6.1.0-58-amd64']);
    expect(second.manifest.packages.find((p) => p.package === 'hello-dkms')?.sha256).toBe(sha('d'));
    expect(second.copies).toEqual([]);
    expect(second.warnings).toEqual([
      expect.stringMatching(
        /^hello-dkms_1\.0\.0_amd64\.deb \(\/out-e\/dkms-deb\/hello-dkms_1\.0\.0_amd64\.deb\) is held, not published: the repository \(bookworm\) has this version with other bytes .*raise PACKAGE_VERSION in dkms\.conf and build again$/,
      ),
    ]);
    // a kernel's package with other bytes is still refused
    expect(() => planApt([bmdeb('6.1.0-57-amd64', { sha: 'c' }), dkmsDeb(bookworm, 'amd64', 'e')], applied(first.manifest))).toThrow(
      /already in the repository \(bookworm\) with other bytes/,
    );
  });

  it('of two given in one publish, the first is taken', () => {
    const plan = planApt([dkmsDeb(bookworm, 'amd64', 'd'), dkmsDeb(bookworm, 'amd64', 'e')], EMPTY_MANIFEST);
    expect(plan.add.map((a) => a.pkg.sha256)).toEqual([sha('d')]);
    expect(plan.held.map((h) => h.pkg.sha256)).toEqual([sha('e')]);
  });

  it('a suite that lacks the version gets the published file, copied from the suite that has it, never the new bytes', () => {
    const first = planApt([bmdeb('6.1.0-57-amd64'), dkmsDeb(bookworm, 'amd64', 'd')], EMPTY_MANIFEST);
    const trixie = [{ release: 'debian-13', arch: 'amd64' }];
    const second = planApt([bmdeb('7.3.4+deb13-amd64', { release: 'debian-13' }), dkmsDeb(trixie, 'amd64', 'e')], applied(first.manifest));
    expect(second.add.map((a) => `${a.suite} ${a.pkg.package}`)).toEqual(['trixie hello-modules-7.3.4+deb13-amd64']);
    expect(second.copies).toEqual([{ suite: 'trixie', from: 'bookworm', package: 'hello-dkms', version: '1.0.0', architecture: 'amd64' }]);
    expect(second.manifest.packages.filter((p) => p.package === 'hello-dkms').map((p) => `${p.suite} ${p.sha256}`)).toEqual([`bookworm ${sha('d')}`, `trixie ${sha('d')}`]);
  });
});

describe('keep N: the newest N module versions of each module per suite', () => {
  it('takes older published versions out of the suite, with a metapackage that pointed at them, and does not add older new ones', () => {
    const first = planApt([bmdeb('6.1.0-56-amd64'), bmdeb('6.1.0-57-amd64'), dkmsDeb(bookworm, 'amd64', 'd')], EMPTY_MANIFEST);
    // 1.1.0 for the older kernel only: 6.1.0-57's 1.0.0 leaves, and the metapackage that depended on it
    const second = planApt([bmdeb('6.1.0-56-amd64', { version: '1.1.0', sha: 'b' }), dkmsDeb(bookworm, 'amd64', 'e', '1.1.0')], applied(first.manifest), { keep: 1 });
    expect(second.add.map((a) => `${a.pkg.package} ${a.pkg.version}`)).toEqual(['hello-modules-6.1.0-56-amd64 1.1.0', 'hello-dkms 1.1.0']);
    expect(second.remove.map((e) => `${e.suite} ${e.package} ${e.version}`)).toEqual([
      `bookworm hello-modules-6.1.0-57-amd64 1.0.0`,
      `bookworm hello-modules-amd64 ${metaVersion('6.1.0-57-amd64', '1.0.0')}`,
    ]);
    expect(second.metapackages.map((m) => `${m.package} -> ${m.depends.package} ${m.depends.version}`)).toEqual(['hello-modules-amd64 -> hello-modules-6.1.0-56-amd64 1.1.0']);
    // the replacement depends on an older kernel's package: an epoch keeps it above the one machines have (apt never downgrades)
    const replaced = second.metapackages[0]?.version ?? '';
    expect(replaced).toBe(`1:${metaVersion('6.1.0-56-amd64', '1.1.0')}`);
    expect(compareDebianVersions(replaced, metaVersion('6.1.0-57-amd64', '1.0.0'))).toBeGreaterThan(0);
    expect(second.manifest.packages.map((p) => `${p.package} ${p.version}`)).toEqual(['hello-dkms 1.1.0', 'hello-modules-6.1.0-56-amd64 1.1.0', `hello-modules-amd64 ${replaced}`]);
    // a newer kernel later: its metapackage keeps the epoch, and so sorts above the replacement
    const later = planApt([bmdeb('6.1.0-60-amd64', { version: '1.1.0', sha: 'c' })], applied(second.manifest), { keep: 1 });
    expect(later.metapackages.map((m) => m.version)).toEqual([`1:${metaVersion('6.1.0-60-amd64', '1.1.0')}`]);
    expect(compareDebianVersions(later.metapackages[0]?.version ?? '', replaced)).toBeGreaterThan(0);
    // an older version given again is not added; without keep it would be
    const third = planApt([bmdeb('6.1.0-58-amd64')], applied(second.manifest), { keep: 1 });
    expect(third.add).toEqual([]);
    expect(third.skipped.map((a) => a.pkg.package)).toEqual(['hello-modules-6.1.0-58-amd64']);
    expect(third.remove).toEqual([]);
    expect(planApt([bmdeb('6.1.0-58-amd64')], applied(second.manifest)).add.map((a) => a.pkg.package)).toEqual(['hello-modules-6.1.0-58-amd64']);
  });

  it('counts versions per suite and by dpkg order, keeps N of them, and refuses keep 0', () => {
    const first = planApt(
      [
        bmdeb('6.1.0-57-amd64', { version: '1.0~rc1' }),
        bmdeb('6.1.0-58-amd64', { version: '1.0' }),
        bmdeb('6.1.0-59-amd64', { version: '0.9' }),
        bmdeb('7.3.4+deb13-amd64', { release: 'debian-13', version: '0.1' }),
      ],
      EMPTY_MANIFEST,
    );
    const kept = planApt([], applied(first.manifest), { keep: 2 });
    // 0.9 was the newest kernel's: its metapackage goes too, and one on the newest kernel left replaces it
    expect(kept.remove.map((e) => `${e.suite} ${e.package} ${e.version}`)).toEqual(['bookworm hello-modules-6.1.0-59-amd64 0.9', 'bookworm hello-modules-amd64 6.1.0.59+0.9']);
    expect(kept.metapackages.map((m) => `${m.suite} ${m.depends.package} ${m.depends.version} ${m.version}`)).toEqual(['bookworm hello-modules-6.1.0-58-amd64 1.0 1:6.1.0.58+1.0']);
    expect(planApt([], applied(first.manifest), { keep: 3 }).remove).toEqual([]);
    expect(() => planApt([], EMPTY_MANIFEST, { keep: 0 })).toThrow(/--keep 0/);
  });
});

describe('Acquire-By-Hash in Release', () => {
  const release = [
    'Origin: kfarm',
    'Codename: bookworm',
    'Date: Mon, 07 Dec 2026 21:00:00 UTC',
    'MD5Sum:',
    ' 0123456789abcdef0123456789abcdef 10 main/binary-amd64/Packages',
    'SHA256:',
    ` ${'a'.repeat(64)} 10 main/binary-amd64/Packages`,
    ` ${'b'.repeat(64)} 7 main/binary-amd64/Packages.gz`,
    '',
  ].join('\n');

  it('reads the SHA256 list and nothing else', () => {
    expect(releaseSha256(release)).toEqual([
      { sha256: 'a'.repeat(64), size: 10, path: 'main/binary-amd64/Packages' },
      { sha256: 'b'.repeat(64), size: 7, path: 'main/binary-amd64/Packages.gz' },
    ]);
  });

  it('adds Acquire-By-Hash: yes once, as a field before the checksum lists', () => {
    const marked = withAcquireByHash(release);
    expect(marked).toContain('Date: Mon, 07 Dec 2026 21:00:00 UTC\nAcquire-By-Hash: yes\nMD5Sum:\n');
    expect(withAcquireByHash(marked)).toBe(marked);
    expect(releaseSha256(marked)).toEqual(releaseSha256(release));
  });
});
