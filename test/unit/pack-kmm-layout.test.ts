import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { packTar, type TarEntry } from '../../src/executor/archive.js';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import type { PackKernel } from '../../src/packaging/packer.js';
import { cpLayerEntries, kmmModuleYaml, kmmRepository, kmmTag, moduleLayerEntries, ociArchiveEntries } from '../../src/packaging/kmm/layout.js';
import { checkStaticElf, readStaticCp } from '../../src/packaging/kmm/static-cp.js';

const EPOCH = 1_700_000_000;
const kernel = (k: string, files: string[], debianArch = 'amd64'): PackKernel => ({
  kernel: k,
  arch: debianArch === 'amd64' ? 'x86_64' : 'aarch64',
  debianArch,
  release: 'debian-12',
  makeLog: undefined,
  kernelConfig: undefined,
  modules: files.map((f) => ({
    builtName: f.split('.')[0]!,
    destName: f.split('.')[0]!,
    fileName: f,
    installLocation: '/updates/dkms',
    destLocation: '/extra',
    data: Buffer.from(`module ${f}`),
  })),
});
const depmodFiles: TarEntry[] = [{ path: 'modules.dep', type: 'file', mode: 0o644, data: Buffer.from('hello.ko.xz:\n') }];
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('kmm names', () => {
  it('makes a Docker tag of version and kernel (no +, at most 128)', () => {
    expect(kmmTag('1.0.0', '6.12.117+deb12-amd64')).toBe('1.0.0-6.12.117_deb12-amd64');
    expect(kmmTag('2.0~rc1', 'x'.repeat(200))).toMatch(/^2\.0_rc1-x+$/);
    expect(kmmTag('2.0', 'x'.repeat(200))).toHaveLength(128);
  });

  it('puts the module name into the repository and refuses what is not a repository', () => {
    expect(kmmRepository('kfarm.local/{name}-kmm', 'My_Mod')).toBe('kfarm.local/my-mod-kmm');
    expect(kmmRepository('registry.example.com:5000/team/{name}', 'hello')).toBe('registry.example.com:5000/team/hello');
    expect(() => kmmRepository('Kfarm/UPPER', 'hello')).toThrow(/not an image repository/);
    expect(() => kmmRepository('kfarm.local/{name}:tag', 'hello')).toThrow(/not an image repository/);
  });
});

describe('kmm layers', () => {
  it('lays the modules flat in /opt/lib/modules/<kver>/ beside depmod files, sorted, root-owned, at the epoch', () => {
    const entries = moduleLayerEntries(kernel('6.12.117+deb12-amd64', ['hello.ko.xz', 'a.ko.xz']), depmodFiles, EPOCH);
    expect(entries.map((e) => e.path)).toEqual([
      'opt',
      'opt/lib',
      'opt/lib/modules',
      'opt/lib/modules/6.12.117+deb12-amd64',
      'opt/lib/modules/6.12.117+deb12-amd64/a.ko.xz',
      'opt/lib/modules/6.12.117+deb12-amd64/hello.ko.xz',
      'opt/lib/modules/6.12.117+deb12-amd64/modules.dep',
    ]);
    for (const e of entries) {
      expect([e.uid, e.gid, e.mtime?.getTime()]).toEqual([0, 0, EPOCH * 1000]);
      expect(e.mode).toBe(e.type === 'directory' ? 0o755 : 0o644);
    }
  });

  it('refuses two modules with one file name in a kernel', () => {
    expect(() => moduleLayerEntries(kernel('6.1.0-57-amd64', ['hello.ko', 'hello.ko']), depmodFiles, EPOCH)).toThrow(/two modules named hello\.ko/);
  });

  it('makes the cp layer from the binary only: the same bytes for every kernel, /bin/cp linked to busybox', async () => {
    const entries = cpLayerEntries(Buffer.from('busybox'), EPOCH);
    expect(entries.map((e) => [e.path, e.type, e.mode.toString(8), e.linkname])).toEqual([
      ['bin', 'directory', '755', undefined],
      ['bin/busybox', 'file', '755', undefined],
      ['bin/cp', 'symlink', '777', 'busybox'],
    ]);
    expect(await packTar(cpLayerEntries(Buffer.from('busybox'), EPOCH))).toEqual(await packTar(entries));
  });
});

/** An OCI content descriptor, as much of it as the tests read. */
interface Descriptor {
  digest: string;
  size: number;
  platform?: unknown;
  annotations?: Record<string, string>;
}

describe('kmm OCI archive', () => {
  const layers = [Buffer.from('layer one'), Buffer.from('layer two')].map((tar) => ({ tar, gz: gzipSync(tar) }));
  const entries = ociArchiveEntries({
    layers,
    labels: { 'io.kfarm.kernel': '6.1.0-57-arm64', 'org.opencontainers.image.version': '1.0' },
    debianArch: 'arm64',
    epoch: EPOCH,
    reference: 'kfarm.local/hello-kmm:1.0-6.1.0-57-arm64',
    tag: '1.0-6.1.0-57-arm64',
  });
  const byPath = new Map(entries.map((e) => [e.path, e.data]));
  const read = <T>(p: string) => JSON.parse(byPath.get(p)!.toString()) as T;
  const blob = (digest: string) => byPath.get(`blobs/sha256/${digest.slice(7)}`);

  it('has an OCI layout whose digests match their blobs, and labels, diff_ids and platform in the config', () => {
    expect(read<unknown>('oci-layout')).toEqual({ imageLayoutVersion: '1.0.0' });
    const desc = read<{ manifests: Descriptor[] }>('index.json').manifests[0]!;
    expect(desc.platform).toEqual({ architecture: 'arm64', variant: 'v8', os: 'linux' });
    expect(desc.annotations?.['org.opencontainers.image.ref.name']).toBe('1.0-6.1.0-57-arm64');
    expect(sha(blob(desc.digest)!)).toBe(desc.digest);
    const manifest = JSON.parse(blob(desc.digest)!.toString()) as { config: Descriptor; layers: Descriptor[] };
    expect(manifest.layers.map((l: { digest: string }) => l.digest)).toEqual(layers.map((l) => sha(l.gz)));
    for (const l of [manifest.config, ...manifest.layers]) expect(blob(l.digest)?.length).toBe(l.size);
    const config = JSON.parse(blob(manifest.config.digest)!.toString()) as { rootfs: { diff_ids: string[] }; config: { Labels: Record<string, string> }; created: string };
    expect(config.rootfs.diff_ids).toEqual(layers.map((l) => sha(l.tar)));
    expect(config.config.Labels['io.kfarm.kernel']).toBe('6.1.0-57-arm64');
    expect(config.created).toBe('2023-11-14T22:13:20Z');
  });

  it('has the manifest.json docker load reads, pointing at the same blobs', () => {
    const m = read<{ Config: string; RepoTags: string[]; Layers: string[] }[]>('manifest.json')[0]!;
    expect(m.RepoTags).toEqual(['kfarm.local/hello-kmm:1.0-6.1.0-57-arm64']);
    expect([m.Config, ...m.Layers].every((p: string) => byPath.has(p))).toBe(true);
  });

  it('is sorted and root-owned at the epoch', () => {
    expect(entries.map((e) => e.path)).toEqual([...entries.map((e) => e.path)].sort());
    expect(entries.every((e) => e.uid === 0 && e.gid === 0 && e.mtime?.getTime() === EPOCH * 1000)).toBe(true);
  });
});

describe('kmm Module YAML', () => {
  it('maps each kernel literally to its image and loads the first module from /opt', () => {
    const yaml = kmmModuleYaml(
      { name: 'my_mod', version: '1.0' },
      [
        { kernel: '6.1.0-57-amd64', image: 'r/my-mod-kmm:1.0-6.1.0-57-amd64' },
        { kernel: '6.12.117+deb12-amd64', image: 'r/my-mod-kmm:1.0-6.12.117_deb12-amd64' },
      ],
      'my_mod',
    );
    expect(yaml).toContain('kind: Module\n');
    expect(yaml).toContain('  name: "my-mod"\n');
    expect(yaml).toContain('        moduleName: "my_mod"\n        dirName: "/opt"\n');
    expect(yaml).toContain('        - literal: "6.12.117+deb12-amd64"\n          containerImage: "r/my-mod-kmm:1.0-6.12.117_deb12-amd64"\n');
    expect(yaml.match(/- literal:/g)).toHaveLength(2);
  });
});

describe('static cp', () => {
  const elf = (machine: number, types: number[]) => {
    const b = Buffer.alloc(64 + 56 * types.length);
    b.writeUInt32BE(0x7f454c46, 0);
    b[4] = 2;
    b[5] = 1;
    b.writeUInt16LE(machine, 18);
    b.writeBigUInt64LE(64n, 32);
    b.writeUInt16LE(56, 54);
    b.writeUInt16LE(types.length, 56);
    types.forEach((t, i) => b.writeUInt32LE(t, 64 + 56 * i));
    return b;
  };

  it('takes a static ELF of the image arch only', () => {
    expect(checkStaticElf(elf(0x3e, [1, 1]), 'amd64')).toBeUndefined();
    expect(checkStaticElf(elf(0xb7, [1]), 'arm64')).toBeUndefined();
    expect(checkStaticElf(elf(0x3e, [6, 3, 1]), 'amd64')).toMatch(/dynamically linked/);
    expect(checkStaticElf(elf(0xb7, [1]), 'amd64')).toMatch(/not amd64/);
    expect(checkStaticElf(Buffer.from('#!/bin/sh\ncp "$@"\n'.padEnd(80)), 'amd64')).toMatch(/not an ELF/);
  });

  it('says which arch lacks a cp and how to get one', async () => {
    const err = await readStaticCp({ amd64: '/bin/busybox' }, 'arm64').catch((e: unknown) => e);
    expect(isKfarmError(err) && err.code).toBe('BAD_OPTION');
    expect((err as Error).message).toMatch(/no static cp for arm64/);
  });
});
