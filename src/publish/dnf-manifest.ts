import { z } from 'zod';
import { ARCH, KERNEL_RELEASE, MODULE_NAME, MODULE_VERSION } from '../dkms/names.js';
import { KfarmError } from '../errors/kfarm-error.js';

/**
 * kfarm-dnf.json, at the top of a DNF repository kfarm publishes: what kfarm put there, one
 * entry per RPM, with the sha256 of the package as the build made it (unsigned) and as the
 * repository serves it (signed). It is what makes a directory a kfarm repository (a directory
 * without it that holds anything is refused, untouched), and what the plan compares a new
 * build's packages with: signing changes a package's bytes, so "the same package again" is the
 * same unsigned bytes, and a version once published never changes. It is read like any input
 * (a schema; file names by kfarm's rules, since they become paths in the repository). Pure.
 */
export const DNF_MANIFEST = 'kfarm-dnf.json';
/** where the signed RPMs live, below the repository */
export const PACKAGES_DIR = 'Packages';
/** the publish lock (process/file-lock.ts): kept, never removed, like every kfarm lock file */
export const DNF_LOCK = '.kfarm-dnf.lock';
/** a publish's staging directory below the repository (one per process); a crash may leave one */
export const DNF_STAGE_PREFIX = '.kfarm-dnf-stage-';

export type DnfPackageKind = 'kmod' | 'dkms';

/** an RPM's name-epoch-version-release-arch as its header says */
export interface RpmIdentity {
  name: string;
  /** rpm's EPOCH; kfarm's packages have none */
  epoch?: number;
  version: string;
  release: string;
  arch: string;
}

export interface PublishedRpm extends RpmIdentity {
  /** relative to the repository: Packages/<name>-<version>-<release>.<arch>.rpm */
  file: string;
  /** PACKAGE_NAME and PACKAGE_VERSION of the dkms module it carries */
  module: string;
  moduleVersion: string;
  kind: DnfPackageKind;
  /** the kernel a kmod package is for */
  kernel?: string;
  /** the package as `kfarm build` made it, before signing */
  sourceSha256: string;
  /** the file the repository serves (signed) */
  sha256: string;
  size: number;
}

export interface DnfManifest {
  schemaVersion: 1;
  kind: 'kfarm-dnf-repository';
  packages: PublishedRpm[];
}

/** rpm's own rules for the header fields kfarm writes (no `-` in version or release, no `/` anywhere) */
const RPM_NAME = /^[A-Za-z0-9_+][A-Za-z0-9_.+-]{0,254}$/;
const RPM_VERSION = /^[A-Za-z0-9_.+~^]{1,128}$/;
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

const publishedRpm = z
  .object({
    file: z.string().regex(/^Packages\/[A-Za-z0-9_+][A-Za-z0-9_.+~^-]{0,300}\.rpm$/),
    name: z.string().regex(RPM_NAME),
    epoch: z.number().int().nonnegative().optional(),
    version: z.string().regex(RPM_VERSION),
    release: z.string().regex(RPM_VERSION),
    arch: z.string().regex(ARCH),
    module: z.string().regex(MODULE_NAME),
    moduleVersion: z.string().regex(MODULE_VERSION),
    kind: z.enum(['kmod', 'dkms']),
    kernel: z.string().regex(KERNEL_RELEASE).optional(),
    sourceSha256: sha256,
    sha256,
    size: z.number().int().nonnegative(),
  })
  .strict();

const manifestSchema = z.object({ schemaVersion: z.literal(1), kind: z.literal('kfarm-dnf-repository'), packages: z.array(publishedRpm).max(1_000_000) }).strict();

/** The checked file (paths made by `rpmFileOf`, so a hand-edited path cannot lead elsewhere). */
export function parseDnfManifest(text: string, where: string): DnfManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw notKfarm(where, `${DNF_MANIFEST} is not valid JSON`, err);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw notKfarm(where, `${DNF_MANIFEST} is not a kfarm DNF manifest: ${issue?.path.join('.') || '(top)'}: ${issue?.message ?? ''}`);
  }
  const manifest: DnfManifest = parsed.data;
  for (const p of manifest.packages) {
    if (p.file !== rpmFileOf(p)) throw notKfarm(where, `${DNF_MANIFEST} names ${p.file} for ${nevraOf(p)}`);
  }
  return manifest;
}

export function emptyDnfManifest(): DnfManifest {
  return { schemaVersion: 1, kind: 'kfarm-dnf-repository', packages: [] };
}

export function serializeDnfManifest(manifest: DnfManifest): Buffer {
  const packages = [...manifest.packages].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  return Buffer.from(`${JSON.stringify({ ...manifest, packages }, null, 2)}\n`);
}

/** The repository's file for a package: rpm's own file naming, one directory. */
export function rpmFileOf(id: RpmIdentity): string {
  return `${PACKAGES_DIR}/${id.name}-${id.version}-${id.release}.${id.arch}.rpm`;
}

/** name-[epoch:]version-release.arch, as rpm and dnf print it */
export function nevraOf(id: RpmIdentity): string {
  return `${id.name}-${id.epoch === undefined ? '' : `${id.epoch}:`}${id.version}-${id.release}.${id.arch}`;
}

/**
 * Pure: what the directory is, from its top-level names and the manifest's text when it has
 * one. Missing or empty (or holding only what an interrupted first publish left: the lock, a
 * stage) is a new repository; one with kfarm-dnf.json is kfarm's; anything else is someone
 * else's directory, refused before anything is written there.
 */
export function classifyDnfRepo(dir: string, entries: readonly string[], manifestText: string | undefined): DnfManifest {
  if (manifestText !== undefined) return parseDnfManifest(manifestText, dir);
  const foreign = entries.filter((e) => e !== DNF_LOCK && !e.startsWith(DNF_STAGE_PREFIX));
  if (foreign.length === 0) return emptyDnfManifest();
  throw notKfarm(
    dir,
    `it holds ${foreign.length} entr${foreign.length === 1 ? 'y' : 'ies'} (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''}) and no ${DNF_MANIFEST}`,
  );
}

function notKfarm(dir: string, why: string, cause?: unknown): KfarmError {
  return new KfarmError('PUBLISH_REFUSED', `${dir} is not a kfarm DNF repository: ${why}; nothing was changed`, {
    context: { repository: dir },
    ...(cause === undefined ? {} : { cause }),
    hint: 'Give a new or empty directory, or one kfarm published to before (it holds kfarm-dnf.json).',
  });
}
