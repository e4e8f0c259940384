import { describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { dnfPackagesOf } from '../../src/publish/dnf-candidates.js';
import { classifyDnfRepo, emptyDnfManifest, parseDnfManifest, rpmFileOf, serializeDnfManifest, type DnfManifest, type PublishedRpm } from '../../src/publish/dnf-manifest.js';
import { droppedVersions, planDnfPublish, type DnfCandidate } from '../../src/publish/dnf-plan.js';
import { rpmEvrCompare, rpmVercmp } from '../../src/publish/dnf-vercmp.js';
import { sampleReport } from '../fixtures/junit/sample-report.js';

const sha = (c: string) => c.repeat(64);

function kmod(kernel: string, moduleVersion: string, bytes: string, module = 'hello'): DnfCandidate {
  return {
    name: `kmod-${module}-${kernel}`,
    version: moduleVersion.replace(/-/g, '_'),
    release: '1',
    arch: 'x86_64',
    module,
    moduleVersion,
    kind: 'kmod',
    kernel,
    sha256: sha(bytes),
    size: 10,
    source: `/out/${kernel}.rpm`,
  };
}
function dkms(moduleVersion: string, bytes: string, module = 'hello'): DnfCandidate {
  return {
    name: `${module}-dkms-bin`,
    version: moduleVersion,
    release: '1',
    arch: 'noarch',
    module,
    moduleVersion,
    kind: 'dkms',
    sha256: sha(bytes),
    size: 10,
    source: `/out/${module}-dkms.rpm`,
  };
}
/** as the repository records a candidate once signed (the signed bytes differ from the build's) */
function published(c: DnfCandidate): PublishedRpm {
  const { source: _source, sha256, ...rest } = c;
  return { ...rest, file: rpmFileOf(c), sourceSha256: sha256, sha256: sha('f'), size: 11 };
}
const manifest = (...packages: PublishedRpm[]): DnfManifest => ({ ...emptyDnfManifest(), packages });
const files = (list: ReadonlyArray<{ file: string }>) => list.map((p) => p.file);

describe('rpm version order (rpmvercmp)', () => {
  // recorded from rpm 4.18 on this host: rpm --eval "%{lua: print(rpm.vercmp('a', 'b'))}"
  const RECORDED: Array<[string, string, number]> = [
    ['1.0', '1.0', 0],
    ['1.0', '1.1', -1],
    ['1.1', '1.0', 1],
    ['1.0', '1.0.1', -1],
    ['1.0~rc1', '1.0', -1],
    ['1.0~rc1', '1.0~rc2', -1],
    ['1.0~~', '1.0~', -1],
    ['1.0^git1', '1.0', 1],
    ['1.0^git1', '1.0.1', -1],
    ['1.0^', '1.0', 1],
    ['1.0a', '1.0', 1],
    ['1.0a', '1.0.1', -1],
    ['1.a', '1.1', -1],
    ['010', '10', 0],
    ['2.0', '10.0', -1],
    ['1.0_rc1', '1.0.rc1', 0],
    ['a', 'b', -1],
    ['6.1.0', '6.12.0', -1],
    ['1.0.0', '1.0.0a', -1],
    ['1.0+x', '1.0', 1],
    ['1.0', '1.0^', -1],
    ['1', 'a', 1],
    ['abc', 'abd', -1],
    ['1.02', '1.1', 1],
  ];
  it.each(RECORDED)('%s vs %s is %i, as rpm says', (a, b, want) => {
    expect(rpmVercmp(a, b)).toBe(want);
    expect(rpmVercmp(b, a)).toBe(-want || 0);
  });

  it('compares epoch first, then version, then release', () => {
    expect(rpmEvrCompare({ epoch: 1, version: '1.0', release: '1' }, { version: '9.9', release: '9' })).toBe(1);
    expect(rpmEvrCompare({ version: '1.0', release: '2' }, { version: '1.0', release: '10' })).toBe(-1);
    expect(rpmEvrCompare({ epoch: 0, version: '1.0', release: '1' }, { version: '1.0', release: '1' })).toBe(0);
  });
});

describe('DNF publish plan', () => {
  it('adds what the repository lacks, and leaves what it holds with the same bytes', () => {
    const old = kmod('6.1.0-56-amd64', '1.0.0', 'a');
    const plan = planDnfPublish({ candidates: [old, kmod('6.1.0-57-amd64', '1.0.0', 'b'), dkms('1.0.0', 'c')], manifest: manifest(published(old)) });
    expect(files(plan.add)).toEqual(['Packages/hello-dkms-bin-1.0.0-1.noarch.rpm', 'Packages/kmod-hello-6.1.0-57-amd64-1.0.0-1.x86_64.rpm']);
    expect(files(plan.unchanged)).toEqual(['Packages/kmod-hello-6.1.0-56-amd64-1.0.0-1.x86_64.rpm']);
    expect(files(plan.stay)).toEqual(['Packages/kmod-hello-6.1.0-56-amd64-1.0.0-1.x86_64.rpm']);
    expect(plan.remove).toEqual([]);
    expect(plan.skipped).toEqual([]);
    expect(plan.held).toEqual([]);
  });

  it('refuses the whole publish when one name-version-release-arch is published with other bytes', () => {
    const before = kmod('6.1.0-57-amd64', '1.0.0', 'a');
    const run = () => planDnfPublish({ candidates: [kmod('6.1.0-56-amd64', '1.0.0', 'x'), kmod('6.1.0-57-amd64', '1.0.0', 'b')], manifest: manifest(published(before)) });
    expect(run).toThrow(
      /refused to publish: 1 package would change a published version: kmod-hello-6\.1\.0-57-amd64-1\.0\.0-1\.x86_64 \(\/out\/6\.1\.0-57-amd64\.rpm\) is published already with other bytes/,
    );
    try {
      run();
    } catch (err) {
      expect(isKfarmError(err, 'PUBLISH_REFUSED'), String(err)).toBe(true);
    }
  });

  it('refuses two out dirs that give one package different bytes, and takes the same bytes twice once', () => {
    const a = kmod('6.1.0-57-amd64', '1.0.0', 'a');
    expect(() => planDnfPublish({ candidates: [a, { ...kmod('6.1.0-57-amd64', '1.0.0', 'b'), source: '/other/x.rpm' }], manifest: emptyDnfManifest() })).toThrow(
      /is both \/out\/6\.1\.0-57-amd64\.rpm and \/other\/x\.rpm, with different bytes/,
    );
    expect(files(planDnfPublish({ candidates: [a, { ...a, source: '/other/x.rpm' }], manifest: emptyDnfManifest() }).add)).toEqual([rpmFileOf(a)]);
  });

  it("holds, never replaces, a dkms RPM of a published version with other kernels' binaries, and still adds the new kernel's kmod", () => {
    const first = dkms('1.0.0', 'a');
    const plan = planDnfPublish({ candidates: [kmod('6.1.0-58-amd64', '1.0.0', 'k'), { ...dkms('1.0.0', 'b'), source: '/out2/dkms.rpm' }], manifest: manifest(published(first)) });
    expect(files(plan.add)).toEqual(['Packages/kmod-hello-6.1.0-58-amd64-1.0.0-1.x86_64.rpm']);
    expect(plan.held.map((c) => c.source)).toEqual(['/out2/dkms.rpm']);
    expect(files(plan.stay)).toEqual(['Packages/hello-dkms-bin-1.0.0-1.noarch.rpm']);
    // the warning says what happened and what to do (the same words as the APT publisher's)
    expect(plan.warnings).toHaveLength(1);
    expect(plan.warnings[0]).toMatch(/^hello-dkms-bin-1\.0\.0-1\.noarch \(\/out2\/dkms\.rpm\) is held, not published: the repository has this version with other bytes/);
    expect(plan.warnings[0]).toContain('raise PACKAGE_VERSION in dkms.conf and build again');
    // a kernel's package with other bytes is still refused, with the dkms RPM held or not
    expect(() =>
      planDnfPublish({
        candidates: [kmod('6.1.0-58-amd64', '1.0.0', 'k'), dkms('1.0.0', 'b')],
        manifest: manifest(published(first), published(kmod('6.1.0-58-amd64', '1.0.0', 'j'))),
      }),
    ).toThrow(/refused to publish: 1 package would change a published version/);
    // two new ones in one publish: the first given is taken
    const two = planDnfPublish({ candidates: [dkms('2.0', 'c'), { ...dkms('2.0', 'd'), source: '/out2/dkms.rpm' }], manifest: emptyDnfManifest() });
    expect(two.add.map((c) => c.sha256)).toEqual([sha('c')]);
    expect(two.held.map((c) => c.sha256)).toEqual([sha('d')]);
    expect(two.warnings[0]).toMatch(/is held, not published: \/out\/hello-dkms\.rpm has this version with other bytes/);
  });

  it('--keep N keeps the newest N versions of each module by rpm order: older published ones go, older new ones are not added', () => {
    const v = (ver: string, k = '6.1.0-57-amd64') => kmod(k, ver, ver.slice(-1));
    const repo = manifest(
      published(v('1.0.0')),
      published(v('1.0.0', '6.1.0-56-amd64')),
      published(v('1.10.0')),
      published(dkms('1.0.0', 'd')),
      published(kmod('6.1.0-57-amd64', '0.1', 'o', 'other')),
    );
    const plan = planDnfPublish({ candidates: [v('1.9.0'), v('1.2.0~rc1'), v('2.0.0~rc1')], manifest: repo, keep: 2 });
    // hello's versions newest first: 2.0.0~rc1, 1.10.0, 1.9.0, 1.2.0~rc1, 1.0.0 (1.10 > 1.9, ~ before release)
    expect(files(plan.add)).toEqual(['Packages/kmod-hello-6.1.0-57-amd64-2.0.0~rc1-1.x86_64.rpm']);
    expect(plan.skipped.map((c) => c.moduleVersion).sort()).toEqual(['1.2.0~rc1', '1.9.0']);
    expect(files(plan.remove)).toEqual([
      'Packages/hello-dkms-bin-1.0.0-1.noarch.rpm',
      'Packages/kmod-hello-6.1.0-56-amd64-1.0.0-1.x86_64.rpm',
      'Packages/kmod-hello-6.1.0-57-amd64-1.0.0-1.x86_64.rpm',
    ]);
    // another module's versions are its own
    expect(files(plan.stay)).toEqual(['Packages/kmod-hello-6.1.0-57-amd64-1.10.0-1.x86_64.rpm', 'Packages/kmod-other-6.1.0-57-amd64-0.1-1.x86_64.rpm']);
  });

  it('--keep compares versions as the packages carry them (a dkms version with - is _ in rpm)', () => {
    const dropped = droppedVersions(
      [
        { module: 'm', moduleVersion: '1.0-2' },
        { module: 'm', moduleVersion: '1.0-10' },
        { module: 'm', moduleVersion: '1.0' },
      ],
      1,
    );
    expect([...dropped].sort()).toEqual(['m\u00001.0', 'm\u00001.0-2']);
    expect(droppedVersions([{ module: 'm', moduleVersion: '1' }], undefined).size).toBe(0);
  });

  it.each([0, -1, 1.5, Number.NaN])('--keep %s is refused', (keep) => {
    expect(() => planDnfPublish({ candidates: [], manifest: emptyDnfManifest(), keep })).toThrow(/keep at least 1 version/);
  });
});

describe('kfarm-dnf.json and what a directory is', () => {
  const one = published(kmod('6.1.0-57-amd64', '1.0.0', 'a'));

  it('a missing or empty directory, or one an interrupted first publish left, is a new repository', () => {
    expect(classifyDnfRepo('/r', [], undefined)).toEqual(emptyDnfManifest());
    expect(classifyDnfRepo('/r', ['.kfarm-dnf.lock', '.kfarm-dnf-stage-123'], undefined)).toEqual(emptyDnfManifest());
  });

  it('a directory holding anything else without kfarm-dnf.json is refused', () => {
    expect(() => classifyDnfRepo('/home/me', ['.bashrc', 'notes.txt'], undefined)).toThrow(
      /^\/home\/me is not a kfarm DNF repository: it holds 2 entries \(\.bashrc, notes\.txt\) and no kfarm-dnf\.json; nothing was changed$/,
    );
    expect(() => classifyDnfRepo('/srv/repo', ['repodata', 'Packages'], undefined)).toThrow(/not a kfarm DNF repository/);
  });

  it('reads back what it writes, and refuses a manifest that is not one or whose paths lead elsewhere', () => {
    const text = serializeDnfManifest(manifest(one)).toString();
    expect(classifyDnfRepo('/r', ['kfarm-dnf.json'], text)).toEqual(manifest(one));
    expect(() => parseDnfManifest('{', '/r')).toThrow(/kfarm-dnf\.json is not valid JSON/);
    expect(() => parseDnfManifest(JSON.stringify({ schemaVersion: 1, kind: 'kfarm-apt-repository', packages: [] }), '/r')).toThrow(/not a kfarm DNF manifest: kind/);
    expect(() => parseDnfManifest(JSON.stringify(manifest({ ...one, file: 'Packages/../../etc/passwd.rpm' })), '/r')).toThrow(/packages\.0\.file/);
    expect(() => parseDnfManifest(JSON.stringify(manifest({ ...one, file: 'Packages/other-1-1.x86_64.rpm' })), '/r')).toThrow(
      /names Packages\/other-1-1\.x86_64\.rpm for kmod-hello-/,
    );
  });
});

describe('the RPMs an out dir lists', () => {
  it('ties each kmod and dkms RPM of report.json to its module and kernel, and takes no other format', () => {
    const report = sampleReport();
    const art = (path: string, format: string) => ({ path, format, sha256: sha('1'), size: 5 });
    report.packages = [
      art('kmod-rpm/kmod-hello-6.1.0-57-amd64-1.0.0-1.x86_64.rpm', 'kmod-rpm'),
      art('kmod-rpm/kmod-hello-7.3.4+deb13-arm64-1.0.0-1.aarch64.rpm', 'kmod-rpm'),
      art('kmod-rpm/kmod-only61-6.1.0-57-amd64-2.0-1.x86_64.rpm', 'kmod-rpm'),
      art('dkms-rpm/only61-dkms-bin-2.0-1.noarch.rpm', 'dkms-rpm'),
      art('bmdeb/hello-modules-6.1.0-57-amd64_1.0.0_amd64.deb', 'bmdeb'),
    ];
    const got = dnfPackagesOf(report, '/out');
    expect(
      got.map((p) => [p.path, p.module, p.moduleVersion, p.kind, p.kernel ?? '-', `${p.expected.name}|${p.expected.version}|${p.expected.release}|${p.expected.arch}`]),
    ).toEqual([
      ['kmod-rpm/kmod-hello-6.1.0-57-amd64-1.0.0-1.x86_64.rpm', 'hello', '1.0.0', 'kmod', '6.1.0-57-amd64', 'kmod-hello-6.1.0-57-amd64|1.0.0|1|x86_64'],
      ['kmod-rpm/kmod-hello-7.3.4+deb13-arm64-1.0.0-1.aarch64.rpm', 'hello', '1.0.0', 'kmod', '7.3.4+deb13-arm64', 'kmod-hello-7.3.4+deb13-arm64|1.0.0|1|aarch64'],
      ['kmod-rpm/kmod-only61-6.1.0-57-amd64-2.0-1.x86_64.rpm', 'only61', '2.0', 'kmod', '6.1.0-57-amd64', 'kmod-only61-6.1.0-57-amd64|2.0|1|x86_64'],
      ['dkms-rpm/only61-dkms-bin-2.0-1.noarch.rpm', 'only61', '2.0', 'dkms', '-', 'only61-dkms-bin|2.0|1|noarch'],
    ]);
  });

  it('refuses an RPM no built kernel accounts for (a failed kernel, a renamed file)', () => {
    const report = sampleReport();
    report.packages = [{ path: 'kmod-rpm/kmod-hello-6.12.117+deb12-amd64-1.0.0-1.x86_64.rpm', format: 'kmod-rpm', sha256: sha('1'), size: 5 }];
    expect(() => dnfPackagesOf(report, '/out')).toThrow(
      /^\/out: report\.json lists kmod-rpm\/kmod-hello-6\.12\.117\+deb12-amd64-1\.0\.0-1\.x86_64\.rpm \(kmod-rpm\), which no module or built kernel/,
    );
  });
});
