import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { extractTar } from '../../src/executor/archive.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { LABEL_ARCH, listKfarmImages } from '../../src/images/catalog.js';
import { kernelImageRef } from '../../src/images/kernel-ref.js';
import { run } from '../../src/process/run.js';
import type { BuildReport, KernelReport } from '../../src/report/report.js';
import { packageRoot } from '../../src/paths.js';
import { example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';
import type { AvailableKernel } from '../helpers/matrix-checks.js';
import { moduleEntry, plainModule } from '../helpers/module-files.js';

const archFixture = (name: string) => path.join(packageRoot, 'test', 'fixtures', 'arch-exclusive', name);

/**
 * arm64 kernels cross-built on amd64: one debian-12 arm64 kernel synced through the real CLI
 * (cached by content after the first run), then modules built for it and checked as an arm64
 * machine would see them.
 */
const runtime = new DockerRuntime();
const EM_AARCH64 = 183;

async function buildReport(args: string[], env: Record<string, string>): Promise<{ exitCode: number; stderr: string; report: BuildReport; out: string }> {
  const out = await tempDir('arm64-out');
  const result = await kfarm(['build', ...args, '--out', out], env);
  const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
  return { exitCode: result.exitCode, stderr: result.stderr, report, out };
}

/** The module of one kernel from its tarball, uncompressed (6.12's are .ko.xz). */
async function koOf(out: string, k: KernelReport, name: string): Promise<Buffer> {
  const tarball = await readFile(path.join(out, k.tarball?.path ?? 'missing'));
  const entries = await extractTar(gunzipSync(tarball), { maxBytes: 1 << 26, maxEntries: 100, allowSymlinks: false }, 'tarball');
  const ko = moduleEntry(entries, k.kernel, 'aarch64', name);
  expect(ko?.data, `${name}.ko under .../${k.kernel}/aarch64/module/ in ${k.tarball?.path}`).toBeDefined();
  return plainModule(ko?.data ?? Buffer.alloc(0), ko?.path ?? '.ko');
}

describe('arm64 kernels cross-built on amd64', () => {
  let env: Record<string, string>;
  let arm64Kernel: string;
  let amd64Kernel: string;

  beforeAll(async () => {
    env = await isolatedEnv('arm64');
    const available = await kfarm(['kernels', '--available', 'debian-12', '--arch', 'arm64', '--json'], env);
    expect(available.exitCode, available.stderr).toBe(0);
    // the newest fetchable generic 6.1 arm64 kernel (newest first)
    const pick = (JSON.parse(available.stdout) as AvailableKernel[]).find((k) => k.fetchable && k.flavour === 'arm64' && /^6\.1\.0-\d+-arm64$/.test(k.kernel));
    expect(pick, 'the archive offers a fetchable debian-12 6.1 arm64 kernel').toBeDefined();
    arm64Kernel = pick?.kernel ?? '';
    const sync = await kfarm(['images', 'sync', 'debian-12', '--arch', 'arm64', '--kernels', arm64Kernel], env, 1_800_000);
    expect(sync.exitCode, `${sync.stdout}\n${sync.stderr}`).toBe(0);
    const amd64 = (await listKfarmImages(runtime)).find((i) => i.name === 'debian-12' && i.arch === 'x86_64');
    expect(amd64, 'a debian-12 amd64 kernel image (scripts/setup.sh builds them)').toBeDefined();
    amd64Kernel = amd64?.kernels[0] ?? '';
  }, 1_800_000);

  it('syncs the arm64 kernel into its own image labelled aarch64, and a second sync has nothing to do', async () => {
    const image = await runtime.inspectImage(kernelImageRef('debian-12', arm64Kernel));
    expect(image?.labels[LABEL_ARCH]).toBe('aarch64');
    expect(image?.labels['io.kfarm.kernels']).toBe(arm64Kernel);
    const again = await kfarm(['images', 'sync', 'debian-12', '--arch', 'arm64', '--kernels', arm64Kernel], env);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(`${again.stdout}${again.stderr}`).toMatch(/\badded 0\b/);
    expect((await runtime.inspectImage(kernelImageRef('debian-12', arm64Kernel)))?.id).toBe(image?.id);
  }, 600_000);

  it('builds hello for arm64 kernels only with --kernels arch:arm64: aarch64 vermagic, an AArch64 ELF, tarballs under aarch64/', async () => {
    const { exitCode, stderr, report, out } = await buildReport([example('hello'), '--kernels', 'arch:arm64'], env);
    expect(exitCode, stderr).toBe(0);
    expect(report.kernels.map((k) => k.kernel)).toContain(arm64Kernel);
    expect(report.kernels.map((k) => k.kernel)).not.toContain(amd64Kernel);
    for (const k of report.kernels) {
      expect(k.arch).toBe('aarch64');
      expect(k.verdict, `${k.kernel}: ${k.message ?? ''}`).toBe('built');
      expect(k.tarball?.path).toBe(`hello-1.0.0-kernel${k.kernel}-aarch64.dkms.tar.gz`);
      expect(k.modules[0]?.destination).toBe(`/lib/modules/${k.kernel}/updates/dkms/${k.modules[0]?.file ?? ''}`);
      expect(k.modules[0]?.file).toMatch(/^hello\.ko(\.xz)?$/);
      const ko = await koOf(out, k, 'hello');
      // ELF64 little-endian, e_machine (offset 18) EM_AARCH64
      expect(ko.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
      expect(ko.readUInt16LE(18)).toBe(EM_AARCH64);
      const file = path.join(os.tmpdir(), `arm64-hello-${k.kernel}.ko`);
      await writeFile(file, ko);
      const vermagic = (await run('modinfo', ['-F', 'vermagic', file])).stdout.trim().split(/\s+/);
      expect(vermagic[0]).toBe(k.kernel);
      expect(vermagic).toContain('aarch64');
      expect(await readFile(path.join(out, k.log), 'utf8')).toContain('ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-');
    }
  }, 900_000);

  it('BUILD_EXCLUSIVE_ARCH="x86_64" excludes the arm64 kernel and builds the amd64 one', async () => {
    const { exitCode, stderr, report } = await buildReport([archFixture('only-x86_64'), '--kernels', `${arm64Kernel},${amd64Kernel}`], env);
    expect(exitCode, stderr).toBe(0);
    const by = new Map(report.kernels.map((k) => [k.kernel, k]));
    expect(by.get(arm64Kernel)?.verdict).toBe('excluded');
    expect(by.get(arm64Kernel)?.message ?? by.get(arm64Kernel)?.reason).toMatch(/BUILD_EXCLUSIVE_ARCH.*aarch64/);
    expect(by.get(amd64Kernel)?.verdict).toBe('built');
    expect(by.get(amd64Kernel)?.tarball?.path).toBe(`only-x86_64-1.0-kernel${amd64Kernel}-x86_64.dkms.tar.gz`);
  }, 600_000);

  it('BUILD_EXCLUSIVE_ARCH="aarch64" builds the arm64 kernel and excludes the amd64 one', async () => {
    const { exitCode, stderr, report, out } = await buildReport([archFixture('only-aarch64'), '--kernels', `${arm64Kernel},${amd64Kernel}`], env);
    expect(exitCode, stderr).toBe(0);
    const by = new Map(report.kernels.map((k) => [k.kernel, k]));
    expect(by.get(amd64Kernel)?.verdict).toBe('excluded');
    expect(by.get(amd64Kernel)?.message ?? by.get(amd64Kernel)?.reason).toMatch(/BUILD_EXCLUSIVE_ARCH.*x86_64/);
    const arm = by.get(arm64Kernel);
    expect(arm?.verdict).toBe('built');
    expect((await koOf(out, arm as KernelReport, 'only_aarch64')).readUInt16LE(18)).toBe(EM_AARCH64);
  }, 600_000);
});
