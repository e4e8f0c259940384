import { KfarmError } from '../errors/kfarm-error.js';
import { kmmRepository, kmmTag } from '../packaging/kmm/layout.js';

/**
 * What the OCI publisher pushes where, decided without I/O.
 *
 * Each KMM image goes to `<registry>/<module>:<version>-<kernel>`: the repository is the
 * module's name under the registry (lower case, `_` as `-`, as the packer names it), the tag the
 * one the packer gave the image (kmmTag: `+` in 6.12.118+deb12 becomes `_`, tags allow no `+`).
 * The module's version is part of the tag because a tag, once published, never changes here:
 * with `:<kernel>` alone, hello 1.1.0 for a kernel that already has 1.0.0 could never be
 * published. The Module manifest does not depend on tags anyway: it names each image by its
 * digest (`<registry>/<module>@sha256:…`), which every OCI client and Kubernetes accept, so a
 * cluster runs exactly the bytes that were published even if someone moves a tag.
 */
export interface OciImage {
  module: string;
  version: string;
  kernel: string;
  /** the OCI archive (oci-archive: for skopeo), checked against report.json */
  archive: string;
  /** the digest of the image manifest inside the archive; skopeo --preserve-digests keeps it */
  digest: string;
  /** the Module YAML the image's build wrote (modprobe's moduleName comes from it) */
  moduleYaml: string;
}

export interface OciTarget extends OciImage {
  repository: string;
  tag: string;
  /** `<repository>:<tag>`: where it is pushed */
  reference: string;
  /** `<repository>@<digest>`: what the Module manifest names */
  pinned: string;
}

export function ociTargets(images: readonly OciImage[], registry: string): OciTarget[] {
  const base = registry.replace(/\/+$/, '');
  const byReference = new Map<string, OciTarget>();
  for (const image of images) {
    let repository: string;
    try {
      repository = kmmRepository(`${base}/{name}`, image.module);
    } catch (err) {
      throw new KfarmError('BAD_OPTION', `the OCI registry ${JSON.stringify(registry)} gives no valid image repository: ${(err as Error).message}`, {
        hint: 'Give a registry host, optionally with a port and a path: registry.example.com:5000/team',
      });
    }
    const host = repository.split('/')[0] ?? '';
    if (!repository.includes('/') || !(/[.:]/.test(host) || host === 'localhost')) {
      // without a host part a tool would push to Docker Hub: say it rather than guess
      throw new KfarmError('BAD_OPTION', `the OCI registry ${JSON.stringify(registry)} names no registry host`, {
        hint: 'Give a registry host, optionally with a port and a path: registry.example.com:5000/team',
      });
    }
    const tag = kmmTag(image.version, image.kernel);
    const reference = `${repository}:${tag}`;
    const target: OciTarget = { ...image, repository, tag, reference, pinned: `${repository}@${image.digest}` };
    const seen = byReference.get(reference);
    if (seen && seen.digest !== image.digest) {
      throw new KfarmError(
        'PUBLISH_REFUSED',
        `two images for ${reference} with different bytes: ${seen.archive} (${seen.digest}) and ${image.archive} (${image.digest}); nothing was pushed`,
        {
          context: { reference },
          hint: 'Publish one build of a module version per kernel.',
        },
      );
    }
    if (!seen) byReference.set(reference, target);
  }
  return [...byReference.values()].sort((a, b) => (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0));
}

export interface OciPlanStep {
  target: OciTarget;
  /** push: the tag is absent; present: the registry holds these very bytes under the tag */
  action: 'push' | 'present';
}

/**
 * `existing` is the digest each target's tag has in the registry now (undefined: no such tag).
 * A tag that names other bytes is refused, for the whole publish: a version, once published,
 * never changes (a cluster pinned to the old digest keeps working, but a human reading the tag
 * would be lied to). The same digest is an idempotent re-publish.
 */
export function planOciPublish(targets: readonly OciTarget[], existing: ReadonlyMap<string, string | undefined>): OciPlanStep[] {
  const clashes = targets.filter((t) => {
    const now = existing.get(t.reference);
    return now !== undefined && now !== t.digest;
  });
  if (clashes.length > 0) {
    const first = clashes[0]!;
    throw new KfarmError(
      'PUBLISH_REFUSED',
      `${first.reference} is already published with other bytes (the registry has ${existing.get(first.reference)}, this build ${first.digest})` +
        (clashes.length > 1 ? ` and ${clashes.length - 1} more tag(s) clash` : '') +
        ': a version, once published, never changes; nothing was pushed',
      {
        context: { reference: first.reference, published: existing.get(first.reference), digest: first.digest },
        hint: 'Publish a new module version (PACKAGE_VERSION) rather than new bytes under the old one.',
      },
    );
  }
  return targets.map((target) => ({ target, action: existing.get(target.reference) === undefined ? 'push' : 'present' }));
}

export interface ModuleMappings {
  /** the module versions the images are of, comma separated (the manifest's comment names them) */
  version: string;
  moduleYaml: string;
  mappings: Array<{ kernel: string; image: string }>;
}

/** Per module, the kernelMappings of its Module manifest: each kernel to its pinned image. */
export function moduleMappings(targets: readonly OciTarget[]): Map<string, ModuleMappings> {
  const modules = new Map<string, ModuleMappings>();
  const versions = new Map<string, Set<string>>();
  for (const t of targets) {
    let m = modules.get(t.module);
    if (!m) {
      m = { version: t.version, moduleYaml: t.moduleYaml, mappings: [] };
      modules.set(t.module, m);
      versions.set(t.module, new Set());
    }
    versions.get(t.module)!.add(t.version);
    const clash = m.mappings.find((x) => x.kernel === t.kernel);
    if (clash) {
      // KMM maps a kernel to one image: two versions for one kernel leave it ambiguous
      throw new KfarmError('PUBLISH_REFUSED', `${t.module} has two images for kernel ${t.kernel} (${clash.image} and ${t.pinned}): one Module maps a kernel to one image`, {
        context: { module: t.module, kernel: t.kernel },
        hint: 'Publish the out dirs of one module version at a time.',
      });
    }
    m.mappings.push({ kernel: t.kernel, image: t.pinned });
  }
  for (const [name, m] of modules) {
    m.version = [...versions.get(name)!].sort().join(', ');
    m.mappings.sort((a, b) => (a.kernel < b.kernel ? -1 : a.kernel > b.kernel ? 1 : 0));
  }
  return modules;
}
