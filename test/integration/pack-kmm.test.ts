import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { readPackInputs } from '../../src/packaging/pack-input.js';
import type { PackInput } from '../../src/packaging/packer.js';
import type { WrittenFile } from '../../src/util/write-atomic.js';
import { createKmmPacker, kmmPacker } from '../../src/packaging/kmm/kmm-packer.js';
import { loadKmmImage } from '../../src/packaging/kmm/load.js';
import { debian12Kernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

/** The fields of a KMM Module these tests read. */
interface KmmModule {
  spec: { moduleLoader: { container: { modprobe: unknown; kernelMappings: unknown } } };
}

/**
 * KMM images of hello for a 6.1 kernel (.ko) and a 6.12 one (.ko.xz), loaded into Docker and
 * run: cp in the image, and the kmod of the kernel's own image (kfarm/debian-12:<kver>, kmod 30
 * +XZ) resolving the module from the image's /opt as KMM's worker does (`modprobe -d /opt`). The
 * KMM image holds no modprobe (KMM's worker brings its own), so /opt is copied out of a
 * container of the loaded image (`docker cp`) into one of the kernel image.
 */
const { k61: K61, k612: K612 } = await debian12Kernels();
const tagOf = (k: string) => k.replace(/\+/g, '_');
const kernelImage = (k: string) => `kfarm/debian-12:${k.replace(/\+/g, '_')}`;

const runtime = new DockerRuntime();
const logger = pino({ level: 'silent' });
let dir: string;
let input: PackInput;
let written: WrittenFile[];
const loaded = new Map<string, string>();

const archiveOf = (k: string) => `hello-1.0.0-kmm-${k}.oci.tar`;

beforeAll(async () => {
  dir = await tempDir('pack-kmm');
  const out = path.join(dir, 'build');
  const build = await kfarm(['build', example('hello'), '--out', out, '--kernels', `${K61},${K612}`], await isolatedEnv('pack-kmm'));
  expect(build.exitCode, build.stderr).toBe(0);
  const inputs = await readPackInputs(out);
  expect(inputs).toHaveLength(1);
  input = inputs[0]!;
  written = await kmmPacker.pack(input, { outDir: path.join(dir, 'a'), logger });
  for (const k of [K61, K612]) loaded.set(k, await loadKmmImage(path.join(dir, 'a', archiveOf(k)), runtime));
}, 900_000);

afterAll(async () => {
  if (loaded.size > 0) await runtime.removeImages([...loaded.values()]);
});

describe('kmm packer', () => {
  it('writes one OCI archive per kernel and the Module YAML', () => {
    expect(written.map((w) => w.path).sort()).toEqual([archiveOf(K61), archiveOf(K612), 'hello-kmm-module.yaml'].sort());
  });

  it('is byte-reproducible: packing the same input again gives the same bytes', async () => {
    const again = await kmmPacker.pack(input, { outDir: path.join(dir, 'b'), logger });
    expect(again).toEqual(written);
    for (const w of written) {
      const [a, b] = await Promise.all([readFile(path.join(dir, 'a', w.path)), readFile(path.join(dir, 'b', w.path))]);
      expect(createHash('sha256').update(b).digest('hex')).toBe(createHash('sha256').update(a).digest('hex'));
    }
  }, 120_000);

  it('loads into Docker under the Module YAML reference, labelled with its kernel', async () => {
    expect(loaded.get(K61)).toBe(`kfarm.local/hello-kmm:1.0.0-${tagOf(K61)}`);
    expect(loaded.get(K612)).toBe(`kfarm.local/hello-kmm:1.0.0-${tagOf(K612)}`);
    for (const [k, ref] of loaded) {
      const image = await runtime.inspectImage(ref);
      expect(image?.labels).toMatchObject({ 'io.kfarm.kernel': k, 'io.kfarm.module': 'hello', 'io.kfarm.version': '1.0.0', 'org.opencontainers.image.version': '1.0.0' });
    }
  });

  it.each([
    [K61, 'hello.ko'],
    [K612, 'hello.ko.xz'],
  ])(
    '%s: cp runs in the image, and modprobe -d /opt resolves %s from its modules.dep',
    async (k, file) => {
      const ref = loaded.get(k)!;
      // cp, the only command the image has: copy depmod's modules.dep to stdout
      const cp = await runtime.runHelper(ref, ['cp', `/opt/lib/modules/${k}/modules.dep`, '/dev/stdout']);
      expect(cp.exitCode, cp.output).toBe(0);
      expect(cp.output).toBe(`${file}:\n`);

      const created = await execa('docker', ['create', ref, 'cp']);
      const id = created.stdout.trim();
      let opt: Buffer;
      try {
        opt = Buffer.from((await execa('docker', ['cp', `${id}:/opt`, '-'], { encoding: 'buffer' })).stdout);
      } finally {
        await runtime.removeContainer(id);
      }
      const probe = await runtime.runHelper(kernelImage(k), ['modprobe', '-n', '-v', '-d', '/opt', 'hello', '--set-version', k], opt);
      expect(probe.exitCode, probe.output).toBe(0);
      expect(probe.output.trim()).toBe(`insmod /opt/lib/modules/${k}/${file}`);
    },
    120_000,
  );

  it('writes a KMM Module that a YAML parser reads, one literal kernelMapping per kernel', async () => {
    // No YAML library in node_modules: PyYAML (python3-yaml) parses it.
    const parsed = JSON.parse(
      (await execa('python3', ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', path.join(dir, 'a', 'hello-kmm-module.yaml')])).stdout,
    ) as KmmModule;
    expect(parsed).toMatchObject({ apiVersion: 'kmm.sigs.x-k8s.io/v1beta1', kind: 'Module', metadata: { name: 'hello' } });
    expect(parsed.spec.moduleLoader.container.modprobe).toEqual({ moduleName: 'hello', dirName: '/opt' });
    expect(parsed.spec.moduleLoader.container.kernelMappings).toEqual([
      { literal: K61, containerImage: loaded.get(K61) },
      { literal: K612, containerImage: loaded.get(K612) },
    ]);
  });

  it('takes the image repository from its options', async () => {
    const files = await createKmmPacker({ imageRepository: 'registry.example.com:5000/team/{name}-kmod' }).pack(input, { outDir: path.join(dir, 'c'), logger });
    const yaml = await readFile(path.join(dir, 'c', 'hello-kmm-module.yaml'), 'utf8');
    expect(yaml).toContain(`containerImage: "registry.example.com:5000/team/hello-kmod:1.0.0-${tagOf(K612)}"`);
    const index = await execa('tar', ['-xOf', path.join(dir, 'c', archiveOf(K61)), 'manifest.json']);
    expect((JSON.parse(index.stdout) as { RepoTags: string[] }[])[0]?.RepoTags).toEqual([`registry.example.com:5000/team/hello-kmod:1.0.0-${tagOf(K61)}`]);
    expect(files).toHaveLength(3);
  }, 120_000);
});
