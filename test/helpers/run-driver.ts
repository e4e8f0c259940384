import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import pino from 'pino';
import { buildOptions, type BuildOptions } from '../../src/config/build-options.js';
import { driverScript } from '../../src/dkms/driver-script.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { listKfarmImages } from '../../src/images/catalog.js';
import type { JobPayload } from '../../src/job/job-payload.js';
import { compareKernels } from '../../src/matrix/kernel-target.js';
import { packSource } from '../../src/source/source-archive.js';
import { runInContainer, type ContainerBuildOutput } from '../../src/worker/run-in-container.js';
import { isolatedEnv, kfarm } from './kfarm-cli.js';

/**
 * driver.sh on its own: one (source, kernel) in the same locked-down container a worker
 * starts, without Redis, the queue or the CLI, so a change to the driver is caught here
 * before the end-to-end suite. The kernel's own kfarm image unless `image` names another
 * (a kernel the image lacks is how `missing-headers` is reached).
 */
const runtime = new DockerRuntime();
const logger = pino({ level: 'silent' });

export interface DriverRun {
  source: string;
  kernel: string;
  /** the image to run in, by kernel (default: the kernel's own) */
  imageOf?: string;
  options?: Partial<BuildOptions>;
}

export async function runDriver(run: DriverRun): Promise<ContainerBuildOutput> {
  const images = await listKfarmImages(runtime);
  const wanted = run.imageOf ?? run.kernel;
  const image = images.find((i) => i.kernels.includes(wanted));
  if (!image) throw new Error(`no kfarm image holds ${wanted}: run \`kfarm images sync\` (or scripts/setup.sh) first`);
  const source = await packSource(run.source);
  const payload: JobPayload = {
    schemaVersion: 1,
    sourceSha256: source.sha256,
    kernel: run.kernel,
    arch: image.arch,
    image: image.name,
    imageRef: image.id,
    imageId: image.id,
    driverSha256: driverScript().sha256,
    options: buildOptions({ timeoutSec: 300, memoryMiB: 2048, diskMiB: 512, ...run.options }),
    buildId: 'driver-test',
  };
  return runInContainer({ runtime, logger, labels: { 'kfarm.test': 'driver' } }, payload, source.tar);
}

/** The images' kernels of one release and arch, newest name last. */
export async function heldKernels(release: string, arch = 'x86_64'): Promise<string[]> {
  const images = await listKfarmImages(runtime);
  return images
    .filter((i) => i.name === release && i.arch === arch)
    .flatMap((i) => i.kernels)
    .sort();
}

/**
 * A generic kernel of the release and Debian arch (amd64, arm64) that an image holds, synced
 * when none is (the newest the archive serves, as release-recipes.test.ts does).
 */
export async function releaseKernel(release: string, debianArch: 'amd64' | 'arm64' = 'amd64'): Promise<string> {
  const generic = new RegExp(`^[0-9][^-]*-(?:[0-9]+-)?${debianArch}$`);
  const held = (await heldKernels(release, debianArch === 'amd64' ? 'x86_64' : 'aarch64')).filter((k) => generic.test(k));
  if (held.length > 0) return held.sort(compareKernels).at(-1) as string;
  const env = await isolatedEnv(`driver-${release}-${debianArch}`);
  const listed = await kfarm(['kernels', '--available', release, '--arch', debianArch, '--json'], env);
  if (listed.exitCode !== 0) throw new Error(`kfarm kernels --available ${release}: ${listed.stderr}`);
  const available = (JSON.parse(listed.stdout) as Array<{ kernel: string; flavour: string; fetchable: boolean }>)
    .filter((k) => k.flavour === debianArch && k.fetchable)
    .map((k) => k.kernel)
    .sort(compareKernels);
  const kernel = available.at(-1);
  if (!kernel) throw new Error(`the archive serves no generic ${debianArch} kernel of ${release}`);
  const synced = await kfarm(['images', 'sync', release, '--arch', debianArch, '--flavours', debianArch, '--kernels', kernel], env, 1_200_000);
  if (synced.exitCode !== 0) throw new Error(`kfarm images sync ${release} ${kernel}: ${synced.stderr}`);
  return kernel;
}

/** A field of a built module, as the host's modinfo reads it (.ko.xz included). */
export async function modinfoField(data: Buffer, suffix: string, field: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kfarm-modinfo-'));
  try {
    const file = path.join(dir, `module${suffix}`);
    await writeFile(file, data);
    const { stdout } = await execa('modinfo', ['-F', field, file]);
    return stdout.trim();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The ELF section names of an uncompressed module (readelf -S). */
export async function sectionNames(data: Buffer): Promise<string[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kfarm-readelf-'));
  try {
    const file = path.join(dir, 'module.ko');
    await writeFile(file, data);
    const { stdout } = await execa('readelf', ['-S', '-W', file]);
    return [...stdout.matchAll(/\]\s+(\S+)/g)].map((m) => m[1] ?? '');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
