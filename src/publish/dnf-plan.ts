import { KfarmError } from '../errors/kfarm-error.js';
import { rpmVersion } from '../packaging/kmod-rpm/rpm-names.js';
import { nevraOf, rpmFileOf, type DnfManifest, type DnfPackageKind, type PublishedRpm, type RpmIdentity } from './dnf-manifest.js';
import { rpmVercmp } from './dnf-vercmp.js';
import { heldDkmsWarning } from './held-dkms.js';

/**
 * What a publish to a DNF repository does, decided before anything is written: which of the
 * out dirs' RPMs to add, which are there already, and (with `keep`) which published ones to
 * take out. A package is identified by name-version-release-arch (its file in the repository);
 * published with other bytes is a refusal of the whole publish, since a version, once published,
 * never changes (a machine that installed it would never see the new bytes, and two machines
 * would run different modules under one version). Pure.
 *
 * The one exception is the dkms RPM (held-dkms.ts, the rule the APT publisher follows too): it is
 * one package per module version that carries the binaries of the kernels of the build that made
 * it, so a later build of the same version for a new kernel makes other bytes under the same
 * name. It is not a refusal (publishing a new kernel is what the repository is for) and not a
 * replacement (a version never changes): the published dkms RPM stays, the new one is `held`
 * (a warning that says what to do), and the new kernel reaches RPM machines through its kmod
 * package. Of two such dkms RPMs in one publish, the first given is taken.
 */
export interface DnfCandidate extends RpmIdentity {
  /** the unsigned package on disk (in an out dir): for messages and the apply step */
  source: string;
  module: string;
  moduleVersion: string;
  kind: DnfPackageKind;
  kernel?: string;
  sha256: string;
  size: number;
}

export interface DnfPlan {
  /** to sign and place, each with its file in the repository */
  add: Array<DnfCandidate & { file: string }>;
  /** candidates the repository holds already with the same bytes: nothing to do */
  unchanged: PublishedRpm[];
  /** published packages of module versions `keep` drops: out of the index, then deleted */
  remove: PublishedRpm[];
  /** candidates of module versions older than the `keep` newest: not added */
  skipped: DnfCandidate[];
  /** dkms RPMs of a version published (or given) already with other kernels' binaries: not added (see above) */
  held: DnfCandidate[];
  /** the published packages that stay (the new ones join them once signed) */
  stay: PublishedRpm[];
  /** what the publisher logs as warnings (one per held dkms RPM, saying what to do) */
  warnings: string[];
}

export interface DnfPlanInput {
  candidates: readonly DnfCandidate[];
  manifest: DnfManifest;
  /** keep the newest N versions of each module (rpm's version order); undefined keeps every version */
  keep?: number;
}

export function planDnfPublish(input: DnfPlanInput): DnfPlan {
  if (input.keep !== undefined && !(Number.isInteger(input.keep) && input.keep >= 1)) {
    throw new KfarmError('BAD_OPTION', `--keep ${String(input.keep)}: keep at least 1 version of a module`, {
      hint: 'Give a whole number of 1 or more, or leave --keep out to keep every version.',
    });
  }
  const published = new Map(input.manifest.packages.map((p) => [p.file, p]));
  const wanted = new Map<string, DnfCandidate>();
  const conflicts: string[] = [];
  const held: DnfCandidate[] = [];
  const warnings: string[] = [];
  for (const c of input.candidates) {
    const file = rpmFileOf(c);
    const earlier = wanted.get(file);
    const there = published.get(file);
    const differsThere = there !== undefined && (there.sourceSha256 !== c.sha256 || there.epoch !== c.epoch);
    const differs = (earlier !== undefined && earlier.sha256 !== c.sha256) || differsThere;
    if (differs && c.kind === 'dkms') {
      held.push(c);
      warnings.push(heldDkmsWarning(nevraOf(c), c.source, differsThere ? 'the repository' : (earlier?.source ?? 'the repository')));
      continue;
    }
    if (earlier && earlier.sha256 !== c.sha256) conflicts.push(`${nevraOf(c)} is both ${earlier.source} and ${c.source}, with different bytes`);
    if (differsThere) conflicts.push(`${nevraOf(c)} (${c.source}) is published already with other bytes`);
    if (!earlier) wanted.set(file, c);
  }
  if (conflicts.length > 0) {
    throw new KfarmError(
      'PUBLISH_REFUSED',
      `refused to publish: ${conflicts.length} package${conflicts.length === 1 ? '' : 's'} would change a published version: ${conflicts.slice(0, 3).join('; ')}${conflicts.length > 3 ? '; ...' : ''}`,
      {
        context: { conflicts: conflicts.length },
        hint: 'A version, once published, never changes: bump PACKAGE_VERSION in dkms.conf and build again. Nothing was published.',
      },
    );
  }
  const dropped = droppedVersions([...input.manifest.packages, ...wanted.values()], input.keep);
  const isDropped = (p: { module: string; moduleVersion: string }) => dropped.has(versionKey(p));
  const add: DnfPlan['add'] = [];
  const unchanged: PublishedRpm[] = [];
  const skipped: DnfCandidate[] = [];
  for (const [file, c] of wanted) {
    if (isDropped(c)) skipped.push(c);
    else if (published.has(file)) unchanged.push(published.get(file)!);
    else add.push({ ...c, file });
  }
  return {
    add: add.sort(byFile),
    unchanged: unchanged.sort(byFile),
    remove: input.manifest.packages.filter(isDropped).sort(byFile),
    skipped,
    held,
    stay: input.manifest.packages.filter((p) => !isDropped(p)).sort(byFile),
    warnings,
  };
}

/**
 * Pure: the (module, version) pairs beyond the newest `keep` of each module, newest by rpm's
 * order of the version as the packages carry it (dnf's own "newest"); equal there, by the text.
 */
export function droppedVersions(packages: ReadonlyArray<{ module: string; moduleVersion: string }>, keep: number | undefined): Set<string> {
  const dropped = new Set<string>();
  if (keep === undefined) return dropped;
  const byModule = new Map<string, Set<string>>();
  for (const p of packages) {
    const versions = byModule.get(p.module) ?? new Set<string>();
    versions.add(p.moduleVersion);
    byModule.set(p.module, versions);
  }
  for (const [module, versions] of byModule) {
    const newestFirst = [...versions].sort((a, b) => rpmVercmp(rpmVersion(b), rpmVersion(a)) || (a < b ? 1 : a > b ? -1 : 0));
    for (const v of newestFirst.slice(keep)) dropped.add(versionKey({ module, moduleVersion: v }));
  }
  return dropped;
}

function versionKey(p: { module: string; moduleVersion: string }): string {
  return `${p.module}\0${p.moduleVersion}`;
}

function byFile<T extends RpmIdentity>(a: T, b: T): number {
  const fa = rpmFileOf(a);
  const fb = rpmFileOf(b);
  return fa < fb ? -1 : fa > fb ? 1 : 0;
}
