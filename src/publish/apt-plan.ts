import { compareDebianVersions } from '../archive/debian-version.js';
import { RELEASES } from '../archive/releases.js';
import { KfarmError } from '../errors/kfarm-error.js';
import { compareKernels } from '../matrix/kernel-target.js';
import { heldDkmsWarning } from './held-dkms.js';

/**
 * What an APT publish does, decided before anything is touched (pure): from the packages the out
 * dirs' reports list and what the repository already holds (its manifest), which package goes
 * into which suite, which are there already, and the metapackages that make a machine follow its
 * kernel (`hello-modules-amd64` depends on the module package of the newest kernel of that
 * flavour, as Debian's `linux-image-amd64` depends on the newest `linux-image-<abi>-amd64`).
 *
 * One suite per Debian release, named by its codename (debian-12 → bookworm), component `main`,
 * the arches kfarm built. A package's name, version and arch name one file in the shared pool:
 * once published its bytes never change (a machine that installed it would never see new bytes,
 * and two machines would run different modules under one version). The rule, the same as the
 * DNF publisher's (dnf-plan.ts):
 * - a kernel's package (bmdeb) published with other bytes refuses the whole publish;
 * - the dkms-deb is one package per module version that carries the binaries of the kernels of
 *   the build that made it, so the next kernel's build of that version makes other bytes under
 *   the same name. Publishing a new kernel is what the repository is for, so this is not refused,
 *   and a version never changes, so it is not replaced either: the published one stays and the
 *   new one is *held* (a warning; the new kernel reaches machines through its bmdeb). A suite that
 *   lacks that version gets the published file (copied from the suite that has it). Of two such
 *   dkms-debs in one publish, the first given is taken.
 */

/** a .deb an out dir's report lists, with what its control file says */
export interface AptPackage {
  /** where it is now (an out dir's file) */
  file: string;
  sha256: string;
  size: number;
  /** control fields */
  package: string;
  version: string;
  architecture: string;
  kind: 'bmdeb' | 'dkms-deb';
  /** the dkms module (PACKAGE_NAME) and its version */
  module: string;
  moduleVersion: string;
  /** bmdeb: the kernel release it carries modules for */
  kernel?: string;
  /** the (release, Debian arch) pairs of the kernels it serves: debian-12/amd64 */
  targets: ReadonlyArray<{ release: string; arch: string }>;
}

/** one package in one suite of the repository, as the manifest records it */
export interface PublishedEntry {
  suite: string;
  package: string;
  version: string;
  architecture: string;
  sha256: string;
  kind: 'bmdeb' | 'dkms-deb' | 'metapackage';
  module: string;
  /** bmdeb: its kernel; metapackage: the kernel it depends on */
  kernel?: string;
  /** the Debian arch whose index it serves (an `all` package: the arches of its suite) */
  arches: string[];
}

/** the repository's own record of what it holds, `.kfarm/manifest.json` */
export interface AptManifest {
  schemaVersion: 1;
  suites: Array<{ codename: string; release: string; arches: string[] }>;
  packages: PublishedEntry[];
}

export interface MetaPackage {
  suite: string;
  package: string;
  version: string;
  architecture: string;
  module: string;
  moduleVersion: string;
  flavour: string;
  /** the newest kernel of the flavour, and the package (and its version) the metapackage depends on */
  kernel: string;
  depends: { package: string; version: string };
}

export interface AptPlan {
  /** every suite after the publish, arches sorted: the reprepro configuration */
  suites: Array<{ codename: string; release: string; arches: string[] }>;
  /** packages to include, per suite */
  add: Array<{ suite: string; pkg: AptPackage }>;
  /** packages the suite holds already, byte for byte */
  present: Array<{ suite: string; pkg: AptPackage }>;
  /** packages the suite holds in a newer version (an older out dir published again): left as they are */
  older: Array<{ suite: string; pkg: AptPackage; published: string }>;
  /** dkms-debs of a version published (or given) already with other bytes: not added (see above) */
  held: Array<{ pkg: AptPackage; published: string }>;
  /** a held dkms-deb's version, as published in suite `from`, into a suite that lacks it (reprepro copy) */
  copies: Array<{ suite: string; from: string; package: string; version: string; architecture: string }>;
  /** published packages of module versions `keep` drops (and metapackages that pointed at them): out of the suite */
  remove: PublishedEntry[];
  /** packages of module versions older than the `keep` newest of their suite: not added */
  skipped: Array<{ suite: string; pkg: AptPackage }>;
  /** metapackages to build and include (new, or a newer kernel or module version) */
  metapackages: MetaPackage[];
  /** what the publisher logs as warnings (one per held dkms-deb, saying what to do) */
  warnings: string[];
  /** the manifest after the publish */
  manifest: AptManifest;
}

export const EMPTY_MANIFEST: AptManifest = { schemaVersion: 1, suites: [], packages: [] };

/** debian-12 → bookworm; a release kfarm has no codename for is refused, never guessed. */
export function suiteOfRelease(release: string): string {
  const spec = RELEASES.find((r) => r.name === release);
  if (!spec) {
    throw new KfarmError('BAD_OPTION', `kfarm knows no Debian codename for release ${release}: its packages have no APT suite`, {
      context: { release },
      hint: `Releases with a suite: ${RELEASES.map((r) => `${r.name} (${r.codename})`).join(', ')}.`,
    });
  }
  return spec.codename;
}

/** 6.1.0-57-amd64 → amd64, 6.12.118+deb12-rt-amd64 → rt-amd64, 7.3.4+deb13-cloud-arm64 → cloud-arm64. */
export function kernelFlavour(kernel: string): { abi: string; flavour: string } {
  const m = /^(\d+\.\d+[^-]*(?:-\d+)?)-([a-z][a-z0-9-]*)$/.exec(kernel);
  if (!m?.[1] || !m[2]) throw new KfarmError('BAD_OPTION', `kernel release ${kernel} names no Debian flavour (like 6.1.0-57-amd64)`, { context: { kernel } });
  return { abi: m[1], flavour: m[2] };
}

/**
 * The metapackage's version: the kernel's ABI, then the module version, `-` made `.` so the
 * whole is one upstream version. It grows with the kernel (6.1.0.57 < 6.1.0.58 < 6.12.118+deb12)
 * and, for one kernel, with the module's version, so `apt-get upgrade` moves to it.
 */
export function metaVersion(kernel: string, moduleVersion: string): string {
  return `${kernelFlavour(kernel).abi.replace(/-/g, '.')}+${moduleVersion.replace(/-/g, '.')}`;
}

/**
 * Pure: the metapackage version for `base` that sorts above `floor`, the version a machine may
 * have installed (the slot's current one, or one --keep took out): apt never moves a package to
 * a lower version, so when --keep leaves an older kernel's package as the newest, the version
 * takes one more epoch than the floor's (Debian's way for a version that must go back), and a
 * version above the floor keeps the floor's epoch.
 */
export function metaVersionAbove(base: string, floor: string | undefined): string {
  if (floor === undefined) return base;
  const epoch = Number(/^(\d+):/.exec(floor)?.[1] ?? 0);
  const same = epoch > 0 ? `${epoch}:${base}` : base;
  return compareDebianVersions(same, floor) > 0 ? same : `${epoch + 1}:${base}`;
}

const withoutEpoch = (version: string) => version.replace(/^\d+:/, '');

export function metaPackageName(bmdebPackage: string, kernel: string): string {
  // the bmdeb is <stem>-modules-<kernel>: the metapackage is <stem>-modules-<flavour>
  const stem = bmdebPackage.slice(0, bmdebPackage.length - `-modules-${kernel}`.length);
  return `${stem}-modules-${kernelFlavour(kernel).flavour}`;
}

const fileKey = (p: { package: string; version: string; architecture: string }) => `${p.package}_${p.version}_${p.architecture}`;
const slotKey = (suite: string, p: { package: string; architecture: string }) => `${suite}|${p.package}|${p.architecture}`;

export interface AptPlanOptions {
  /** keep the newest N module versions of each module in each suite (dpkg's order); undefined keeps every version */
  keep?: number;
}

export function planApt(packages: readonly AptPackage[], manifest: AptManifest, options: AptPlanOptions = {}): AptPlan {
  const keep = options.keep;
  if (keep !== undefined && !(Number.isInteger(keep) && keep >= 1)) {
    throw new KfarmError('BAD_OPTION', `--keep ${String(keep)}: keep at least 1 version of a module`, {
      hint: 'Give a whole number of 1 or more, or leave --keep out to keep every version.',
    });
  }
  // a version, once published, never changes: the same pool file with other bytes is refused
  // (a kernel's package) or held (the dkms-deb), whether it is in the repository already or
  // given twice now
  const bytes = new Map<string, { sha256: string; where: string }>();
  for (const e of manifest.packages) if (e.kind !== 'metapackage') bytes.set(fileKey(e), { sha256: e.sha256, where: `the repository (${e.suite})` });
  const held: AptPlan['held'] = [];
  const taken: AptPackage[] = [];
  for (const p of packages) {
    const seen = bytes.get(fileKey(p));
    if (seen && seen.sha256 !== p.sha256) {
      if (p.kind === 'dkms-deb') {
        held.push({ pkg: p, published: seen.where });
        continue;
      }
      throw new KfarmError('PUBLISH_REFUSED', `${fileKey(p)}.deb is already in ${seen.where} with other bytes: a published version never changes; nothing was published`, {
        context: { package: p.package, version: p.version, arch: p.architecture, file: p.file },
        hint: 'Raise PACKAGE_VERSION in dkms.conf and build again: a client that installed the published file must never be handed another under the same version.',
      });
    }
    bytes.set(fileKey(p), { sha256: p.sha256, where: p.file });
    taken.push(p);
  }

  // suites: what the repository has, and each target of each package
  const suites = new Map<string, { codename: string; release: string; arches: Set<string> }>();
  for (const s of manifest.suites) suites.set(s.codename, { codename: s.codename, release: s.release, arches: new Set(s.arches) });
  for (const p of packages) {
    for (const t of p.targets) {
      const codename = suiteOfRelease(t.release);
      const suite = suites.get(codename) ?? { codename, release: t.release, arches: new Set<string>() };
      suite.arches.add(t.arch);
      suites.set(codename, suite);
    }
  }

  // per suite, what each slot (name, arch) holds after the publish
  const slots = new Map<string, PublishedEntry>();
  /** versions of metapackages --keep took out, by slot: their replacement sorts above them */
  const floors = new Map<string, string>();
  for (const e of manifest.packages) slots.set(slotKey(e.suite, e), e);
  const add: AptPlan['add'] = [];
  const present: AptPlan['present'] = [];
  const older: AptPlan['older'] = [];
  const copies: AptPlan['copies'] = [];
  const entryOf = (suite: string, p: AptPackage, arches: string[], sha256: string): PublishedEntry => ({
    suite,
    package: p.package,
    version: p.version,
    architecture: p.architecture,
    sha256,
    kind: p.kind,
    module: p.module,
    ...(p.kernel === undefined ? {} : { kernel: p.kernel }),
    arches,
  });
  const suitesOf = (p: AptPackage) => [...new Set(p.targets.map((t) => suiteOfRelease(t.release)))].sort();
  const archesIn = (p: AptPackage, suite: string) => [...new Set(p.targets.filter((t) => suiteOfRelease(t.release) === suite).map((t) => t.arch))].sort();
  for (const p of taken) {
    for (const suite of suitesOf(p)) {
      const held = slots.get(slotKey(suite, p));
      if (held && held.version === p.version) {
        present.push({ suite, pkg: p });
        continue;
      }
      if (held && compareDebianVersions(held.version, p.version) > 0) {
        older.push({ suite, pkg: p, published: held.version });
        continue;
      }
      if (add.some((a) => a.suite === suite && a.pkg.package === p.package && a.pkg.architecture === p.architecture)) continue;
      add.push({ suite, pkg: p });
      slots.set(slotKey(suite, p), entryOf(suite, p, archesIn(p, suite), p.sha256));
    }
  }
  // a held dkms-deb's suites that lack its version get the file that stays (its pool file is the one name+version+arch may have)
  for (const h of held) {
    const p = h.pkg;
    for (const suite of suitesOf(p)) {
      const there = slots.get(slotKey(suite, p));
      if (there && compareDebianVersions(there.version, p.version) >= 0) continue;
      const from = [...slots.values()].find((e) => e.suite !== suite && fileKey(e) === fileKey(p));
      if (!from) continue;
      copies.push({ suite, from: from.suite, package: p.package, version: p.version, architecture: p.architecture });
      slots.set(slotKey(suite, p), { ...from, suite, arches: archesIn(p, suite) });
    }
  }

  // keep: per suite and module, the newest N module versions (of its kernels' packages and dkms-deb)
  const remove: PublishedEntry[] = [];
  const skipped: AptPlan['skipped'] = [];
  if (keep !== undefined) {
    const versions = new Map<string, Set<string>>();
    for (const e of slots.values()) {
      if (e.kind === 'metapackage') continue;
      const key = `${e.suite}|${e.module}`;
      versions.set(key, (versions.get(key) ?? new Set<string>()).add(e.version));
    }
    const dropped = new Set<string>();
    for (const [key, set] of versions) for (const v of [...set].sort((a, b) => compareDebianVersions(b, a)).slice(keep)) dropped.add(`${key}|${v}`);
    const isDropped = (e: { suite: string; module: string; version: string }) => dropped.has(`${e.suite}|${e.module}|${e.version}`);
    const published = new Set(manifest.packages.map((e) => slotKey(e.suite, e)));
    for (const [key, e] of [...slots]) {
      if (e.kind === 'metapackage' || !isDropped(e)) continue;
      slots.delete(key);
      if (published.has(key)) remove.push(e);
    }
    for (let i = add.length - 1; i >= 0; i--) {
      const a = add[i];
      if (a && isDropped({ suite: a.suite, module: a.pkg.module, version: a.pkg.version })) {
        skipped.unshift(a);
        add.splice(i, 1);
      }
    }
    for (let i = copies.length - 1; i >= 0; i--) {
      const c = copies[i];
      if (c && !slots.has(slotKey(c.suite, c))) copies.splice(i, 1);
    }
    // a metapackage whose module package left goes too: the one computed below replaces it, above its version
    for (const [key, e] of [...slots]) {
      if (e.kind !== 'metapackage') continue;
      const target = [...slots.values()].some(
        (b) => b.suite === e.suite && b.kind === 'bmdeb' && b.kernel === e.kernel && b.module === e.module && b.architecture === e.architecture,
      );
      if (target) continue;
      slots.delete(key);
      floors.set(key, e.version);
      if (published.has(key)) remove.push(e);
    }
  }

  // metapackages: per (suite, module, arch, flavour), the bmdeb of the newest kernel
  const newest = new Map<string, PublishedEntry>();
  for (const e of slots.values()) {
    if (e.kind !== 'bmdeb' || e.kernel === undefined) continue;
    const key = `${e.suite}|${e.module}|${e.architecture}|${kernelFlavour(e.kernel).flavour}`;
    const best = newest.get(key);
    if (!best || compareKernels(e.kernel, best.kernel ?? '') > 0) newest.set(key, e);
  }
  const metapackages: MetaPackage[] = [];
  for (const e of [...newest.values()].sort((a, b) => slotKey(a.suite, a).localeCompare(slotKey(b.suite, b)))) {
    const kernel = e.kernel ?? '';
    const meta: MetaPackage = {
      suite: e.suite,
      package: metaPackageName(e.package, kernel),
      version: metaVersion(kernel, e.version),
      architecture: e.architecture,
      module: e.module,
      moduleVersion: e.version,
      flavour: kernelFlavour(kernel).flavour,
      kernel,
      depends: { package: e.package, version: e.version },
    };
    const held = slots.get(slotKey(meta.suite, meta));
    if (held && compareDebianVersions(withoutEpoch(held.version), meta.version) >= 0) continue;
    meta.version = metaVersionAbove(meta.version, held?.version ?? floors.get(slotKey(meta.suite, meta)));
    metapackages.push(meta);
    slots.set(slotKey(meta.suite, meta), {
      suite: meta.suite,
      package: meta.package,
      version: meta.version,
      architecture: meta.architecture,
      // the built file's sha256 is known only once it is built: the apply step fills it in
      sha256: '',
      kind: 'metapackage',
      module: meta.module,
      kernel,
      arches: [meta.architecture],
    });
  }

  const suiteList = [...suites.values()]
    .map((s) => ({ codename: s.codename, release: s.release, arches: [...s.arches].sort() }))
    .sort((a, b) => a.codename.localeCompare(b.codename));
  const manifestAfter: AptManifest = {
    schemaVersion: 1,
    suites: suiteList,
    packages: [...slots.values()].sort((a, b) => slotKey(a.suite, a).localeCompare(slotKey(b.suite, b))),
  };
  const warnings = held.map((h) => heldDkmsWarning(`${fileKey(h.pkg)}.deb`, h.pkg.file, h.published));
  return { suites: suiteList, add, present, older, held, copies, remove, skipped, metapackages, warnings, manifest: manifestAfter };
}
