import { createHash } from 'node:crypto';
import type { TarEntry } from '../../executor/archive.js';
import type { PackInput, PackKernel } from '../packer.js';

/**
 * KMM module images (kubernetes-sigs/kernel-module-management, docs/mkdocs/documentation/kmod_image.md):
 * the modules under /opt/lib/modules/<kver>/ with the modules.dep* depmod writes there (KMM's
 * worker runs `modprobe -d /opt` and never depmod), and a `cp` (the worker copies them out).
 *
 * One image per kernel, not one for all: a kernel fixes the image's architecture (and so which
 * static cp it carries; one image cannot hold an amd64 and an arm64 cp under /bin/cp), KMM's own
 * convention is a tag per kernel (`containerImage: …:${KERNEL_FULL_VERSION}`), and a node pulls
 * only its kernel's modules. The cp layer is the same bytes in every image of an arch, so a
 * registry stores it once: per-kernel images cost one small module layer each.
 *
 * Files sit flat in /opt/lib/modules/<kver>/ as the docs show, so KMM's in-cluster signing glob
 * (`filesToSign: /opt/lib/modules/${KERNEL_FULL_VERSION}/*.ko`) finds them.
 */
export const KMM_DIR = 'opt';

export const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

const GO_ARCH: Record<string, { architecture: string; variant?: string }> = {
  amd64: { architecture: 'amd64' },
  arm64: { architecture: 'arm64', variant: 'v8' },
};

export function ociPlatform(debianArch: string): { architecture: string; os: 'linux'; variant?: string } {
  const p = GO_ARCH[debianArch];
  if (!p) throw new Error(`no OCI platform for Debian arch ${debianArch}`);
  return { ...p, os: 'linux' };
}

/** A Docker tag: [A-Za-z0-9_.-], at most 128, not starting with . or - (`+` in 6.12.117+deb12 is not allowed). */
export function kmmTag(version: string, kernel: string): string {
  return `${version}-${kernel}`
    .replace(/[^A-Za-z0-9_.-]/g, '_')
    .replace(/^[.-]/, '_')
    .slice(0, 128);
}

/** `{name}` in the configured repository is the module's name. */
export function kmmRepository(template: string, name: string): string {
  const repo = template.replaceAll('{name}', name.toLowerCase().replace(/_/g, '-'));
  // distribution/reference: lower-case path components, optional host[:port] first
  if (!/^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(repo) || repo.length > 255) {
    throw new Error(`${JSON.stringify(repo)} is not an image repository`);
  }
  return repo;
}

export const kmmArchiveName = (input: Pick<PackInput, 'name' | 'version'>, kernel: string) => `${input.name}-${input.version}-kmm-${kernel}.oci.tar`;
export const kmmModuleYamlName = (name: string) => `${name}-kmm-module.yaml`;

export function imageLabels(input: Pick<PackInput, 'name' | 'version' | 'sourceDateEpoch'>, kernel: PackKernel): Record<string, string> {
  return {
    'io.kfarm.kernel': kernel.kernel,
    'io.kfarm.module': input.name,
    'io.kfarm.version': input.version,
    'org.opencontainers.image.created': isoDate(input.sourceDateEpoch),
    'org.opencontainers.image.description': `${input.name} ${input.version} kernel modules for ${kernel.kernel} (${kernel.debianArch}), KMM module image`,
    'org.opencontainers.image.title': `${input.name}-kmm`,
    'org.opencontainers.image.version': input.version,
  };
}

const isoDate = (epoch: number) => new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z');

/** The module files as KMM's worker reads them: /opt/lib/modules/<kver>/<file>. */
export function moduleTree(kernel: PackKernel): TarEntry[] {
  const seen = new Set<string>();
  return kernel.modules.map((m) => {
    if (seen.has(m.fileName)) throw new Error(`${kernel.kernel} has two modules named ${m.fileName}`);
    seen.add(m.fileName);
    return { path: `lib/modules/${kernel.kernel}/${m.fileName}`, type: 'file' as const, mode: 0o644, data: m.data };
  });
}

/**
 * Two layers: the cp (/bin/busybox, /bin/cp linked to it), the same bytes in every image of an
 * arch so a registry or engine keeps it once, then /opt/lib/modules/<kver>/ (the modules and
 * depmod's files, paths relative to /opt). Directories listed, sorted, root:root, fixed mtime.
 */
export function cpLayerEntries(staticCp: Buffer, epoch: number): TarEntry[] {
  return normalize(
    [
      { path: 'bin/busybox', type: 'file', mode: 0o755, data: staticCp },
      { path: 'bin/cp', type: 'symlink', mode: 0o777, linkname: 'busybox' },
    ],
    epoch,
  );
}

export function moduleLayerEntries(kernel: PackKernel, depmodFiles: readonly TarEntry[], epoch: number): TarEntry[] {
  return normalize(
    [
      ...moduleTree(kernel).map((e) => ({ ...e, path: `${KMM_DIR}/${e.path}` })),
      ...depmodFiles.map((e) => ({ path: `${KMM_DIR}/lib/modules/${kernel.kernel}/${e.path}`, type: 'file' as const, mode: 0o644, data: e.data })),
    ],
    epoch,
  );
}

function normalize(files: readonly TarEntry[], epoch: number): TarEntry[] {
  const mtime = new Date(epoch * 1000);
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  const all: TarEntry[] = [...[...dirs].map((d) => ({ path: d, type: 'directory' as const, mode: 0o755 })), ...files];
  return all.map((e) => ({ ...e, uid: 0, gid: 0, mtime })).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export interface OciBlob {
  digest: string;
  data: Buffer;
}

export const blobOf = (data: Buffer): OciBlob => ({ digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, data });
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

/**
 * The archive's members: an OCI image layout (oci-layout, index.json, blobs/sha256/…) plus the
 * manifest.json `docker load` reads (Docker before 25 loads only that; BuildKit's docker exporter
 * writes the same pair). Each layer: its tar (whose digest is the diff_id) and that tar gzipped.
 */
export function ociArchiveEntries(opts: {
  layers: ReadonlyArray<{ tar: Buffer; gz: Buffer }>;
  labels: Record<string, string>;
  debianArch: string;
  epoch: number;
  reference: string;
  tag: string;
}): TarEntry[] {
  const platform = ociPlatform(opts.debianArch);
  const layers = opts.layers.map((l) => blobOf(l.gz));
  const config = blobOf(
    json({
      architecture: platform.architecture,
      ...(platform.variant ? { variant: platform.variant } : {}),
      os: 'linux',
      created: isoDate(opts.epoch),
      config: { Labels: sortedObject(opts.labels) },
      rootfs: { type: 'layers', diff_ids: opts.layers.map((l) => blobOf(l.tar).digest) },
      history: opts.layers.map(() => ({ created: isoDate(opts.epoch), created_by: 'kfarm pack --format kmm' })),
    }),
  );
  const manifest = blobOf(
    json({
      schemaVersion: 2,
      mediaType: MEDIA.manifest,
      config: { mediaType: MEDIA.config, digest: config.digest, size: config.data.length },
      layers: layers.map((l) => ({ mediaType: MEDIA.layer, digest: l.digest, size: l.data.length })),
      annotations: sortedObject(Object.fromEntries(Object.entries(opts.labels).filter(([k]) => k.startsWith('org.opencontainers.image.')))),
    }),
  );
  const index = json({
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [
      {
        mediaType: MEDIA.manifest,
        digest: manifest.digest,
        size: manifest.data.length,
        annotations: { 'io.containerd.image.name': opts.reference, 'org.opencontainers.image.ref.name': opts.tag },
        platform,
      },
    ],
  });
  const path = (b: OciBlob) => `blobs/sha256/${b.digest.slice('sha256:'.length)}`;
  const dockerManifest = json([{ Config: path(config), RepoTags: [opts.reference], Layers: layers.map(path) }]);
  const mtime = new Date(opts.epoch * 1000);
  const blobs = new Map([config, manifest, ...layers].map((b) => [path(b), b.data]));
  const entries: TarEntry[] = [
    { path: 'blobs', type: 'directory', mode: 0o755 },
    { path: 'blobs/sha256', type: 'directory', mode: 0o755 },
    ...[...blobs].map(([p, data]) => ({ path: p, type: 'file' as const, mode: 0o644, data })),
    { path: 'index.json', type: 'file', mode: 0o644, data: index },
    { path: 'manifest.json', type: 'file', mode: 0o644, data: dockerManifest },
    { path: 'oci-layout', type: 'file', mode: 0o644, data: json({ imageLayoutVersion: '1.0.0' }) },
  ];
  return entries.map((e) => ({ ...e, uid: 0, gid: 0, mtime })).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function sortedObject(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** YAML double-quoted scalar: JSON's string syntax is valid YAML 1.2 and escapes everything. */
const q = (s: string) => JSON.stringify(s);

/**
 * KMM `Module` (kmm.sigs.x-k8s.io/v1beta1): one literal kernelMapping per built kernel, each to
 * that kernel's image; modprobe loads the first module from /opt (KMM's default dirName).
 */
export function kmmModuleYaml(input: Pick<PackInput, 'name' | 'version'>, kernels: ReadonlyArray<{ kernel: string; image: string }>, moduleName: string): string {
  const metaName =
    input.name
      .toLowerCase()
      .replace(/[^a-z0-9.-]/g, '-')
      .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
      .slice(0, 253) || 'kmod';
  const lines = [
    '# KMM Module for ' + `${input.name} ${input.version}` + ', written by kfarm: one image per kernel (kernelMappings are literal).',
    'apiVersion: kmm.sigs.x-k8s.io/v1beta1',
    'kind: Module',
    'metadata:',
    `  name: ${q(metaName)}`,
    'spec:',
    '  moduleLoader:',
    '    container:',
    '      modprobe:',
    `        moduleName: ${q(moduleName)}`,
    `        dirName: ${q('/' + KMM_DIR)}`,
    '      kernelMappings:',
    ...kernels.flatMap((k) => [`        - literal: ${q(k.kernel)}`, `          containerImage: ${q(k.image)}`]),
    '  selector:',
    `    ${q('kubernetes.io/os')}: ${q('linux')}`,
    '',
  ];
  return lines.join('\n');
}
