import { access, readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import type { BuildReport, KernelReport } from '../../src/report/report.js';
import { defaultKernels, fixture, isolatedEnv, kfarm, tempDir, type CliRun } from '../helpers/kfarm-cli.js';

/**
 * Module sources that attack the farm from inside the build container. Each is built by the
 * real CLI on the default image, for one 6.1 kernel (which builds normally) and the 6.12
 * kernel (where most of them misbehave): each must end as a clear verdict, the other
 * kernel must still build, and no container may be left.
 */
const runtime = new DockerRuntime();
let on61: string;
let on612: string;

beforeAll(async () => {
  const kernels = (await defaultKernels()).split(',');
  on61 = kernels.find((k) => k.startsWith('6.1.')) ?? 'none';
  on612 = kernels.find((k) => k.startsWith('6.12.')) ?? 'none';
});

async function build(name: string, extra: string[] = []): Promise<{ run: CliRun; out: string; byKernel: Map<string, KernelReport>; ms: number }> {
  const out = await tempDir(name);
  const started = Date.now();
  const run = await kfarm(['build', fixture(name), '--out', out, '--kernels', `${on61},${on612}`, ...extra], await isolatedEnv(name));
  const ms = Date.now() - started;
  const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8').catch(() => '{"kernels":[]}')) as BuildReport;
  return { run, out, byKernel: new Map(report.kernels.map((k) => [k.kernel, k])), ms };
}

async function noContainersLeft(): Promise<void> {
  expect(await runtime.listContainers({ 'kfarm.build': '' })).toEqual([]);
}

describe('hostile module sources', () => {
  it('a build that reaches for the network fails at once with the error, not a hang; the other kernel builds', async () => {
    const { run, byKernel, ms, out } = await build('tries-network', ['--timeout', '120']);
    expect(run.exitCode, run.stderr).toBe(1);
    expect(ms).toBeLessThan(60_000);
    expect(byKernel.get(on61)?.verdict).toBe('built');
    const k = byKernel.get(on612);
    expect(k).toMatchObject({ verdict: 'failed', reason: 'make-failed', attempt: 1 });
    const log = await readFile(path.join(out, k?.log ?? ''), 'utf8');
    expect(log).toContain('error: cannot resolve deb.debian.org');
    expect(log).toMatch(/Network is unreachable|No route to host|Cannot assign requested address/);
    await noContainersLeft();
  });

  it('a build that creates a million empty files ends disk-full on the inode cap, quickly, naming the mount and --disk', async () => {
    const { run, byKernel, ms } = await build('many-files', ['--disk', '128', '--timeout', '300']);
    expect(run.exitCode, run.stderr).toBe(1);
    expect(ms).toBeLessThan(120_000);
    expect(byKernel.get(on61)?.verdict).toBe('built');
    const k = byKernel.get(on612);
    expect(k).toMatchObject({ verdict: 'failed', reason: 'disk-full', attempt: 1 });
    expect(k?.message).toContain('/var/lib/dkms');
    expect(k?.message).toContain('ran out of inodes');
    expect(k?.message).toContain('raise --disk');
    await noContainersLeft();
  });

  it('a build that prints gigabytes of log keeps its verdict; the log is capped with a note', async () => {
    const { run, byKernel, out } = await build('floods-log', ['--timeout', '300']);
    expect(run.exitCode, run.stderr).toBe(0);
    for (const kernel of [on61, on612]) {
      const k = byKernel.get(kernel);
      expect(k?.verdict).toBe('built');
      const logFile = path.join(out, k?.log ?? '');
      const cap = 16 * 1024 * 1024;
      expect((await stat(logFile)).size).toBeLessThanOrEqual(cap + 200);
      const log = await readFile(logFile, 'utf8');
      expect(log).toContain(`[kfarm] log truncated at ${cap} bytes`);
    }
    await noContainersLeft();
  });

  it('escape sequences a build prints never reach the terminal kfarm writes to', async () => {
    const { run, byKernel, out } = await build('escapes-terminal');
    expect(run.exitCode, run.stderr).toBe(1);
    expect(byKernel.get(on61)?.verdict).toBe('built');
    const k = byKernel.get(on612);
    expect(k).toMatchObject({ verdict: 'failed', reason: 'make-failed' });
    // the first error is there, printable
    expect(k?.firstError).toContain('error: ');
    expect(k?.firstError).toContain('painted');
    expect(k?.firstError).not.toMatch(/\p{Cc}/u); // C0, DEL and C1
    expect(run.stdout).toContain('painted');
    expect(run.stdout).not.toContain('\u001b');
    expect(run.stderr).not.toContain('\u001b');
    expect(run.stdout + run.stderr).not.toContain('\u0007');
    // the log file keeps what the build printed
    expect(await readFile(path.join(out, k?.log ?? ''), 'utf8')).toContain('\u001b[31mred text');
    await noContainersLeft();
  });

  it('a Makefile that tries to rewrite the driver result or plant "verdict built" cannot: the true verdict stands', async () => {
    const { run, byKernel, out } = await build('forges-result');
    expect(run.exitCode, run.stderr).toBe(1);
    expect(byKernel.get(on61)?.verdict).toBe('built');
    const k = byKernel.get(on612);
    expect(k).toMatchObject({ verdict: 'failed', reason: 'make-failed', attempt: 1 });
    expect(k?.modules).toEqual([]);
    expect(k?.tarball).toBeUndefined();
    const log = await readFile(path.join(out, k?.log ?? ''), 'utf8');
    expect(log).toContain('/kfarm/out/result: Permission denied');
    expect(log).not.toContain('FORGED');
    expect(log).not.toContain('REMOVED');
    await noContainersLeft();
  });

  it('a DEST_MODULE_NAME holding ../ is bad input: exit 2, names the directive, nothing written outside --out', async () => {
    const escaped = '/tmp/kfarm-escaped.ko';
    const { run, out } = await build('bad-dest-name');
    expect(run.exitCode, run.stderr).toBe(2);
    expect(run.stderr).toContain('DEST_MODULE_NAME[0] "../../../../tmp/kfarm-escaped" is not a valid module name');
    await expect(access(escaped)).rejects.toThrow();
    // only what kfarm writes itself (no tarball for a module that never built)
    for (const entry of await readdir(out)) expect(entry).not.toContain('kfarm-escaped');
    await noContainersLeft();
  });
});
