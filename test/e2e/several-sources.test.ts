import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BuildReport } from '../../src/report/report.js';
import { example, fixture, isolatedEnv, kfarm, tempDir, type CliRun } from '../helpers/kfarm-cli.js';

/** `kfarm build <src> <src>`: two unrelated module sources in one run, one report, one matrix. */
describe('kfarm build with several sources', () => {
  let out: string;
  let result: CliRun;
  let report: BuildReport;
  let env: Record<string, string>;

  beforeAll(async () => {
    out = await tempDir('several-out');
    env = await isolatedEnv('several');
    result = await kfarm(['build', example('hello'), fixture('depends-exporter'), '--out', out], env);
    report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
  }, 900_000);

  it('writes one report with every (module, kernel) row and exits 0', () => {
    expect(result.exitCode, result.stderr).toBe(0);
    const kernels = env.KFARM_KERNELS?.split(',') ?? [];
    expect(kernels.length).toBeGreaterThanOrEqual(1);
    const rows = report.kernels.map((k) => `${k.module}/${k.version} ${k.kernel} ${k.verdict}`).sort();
    const wanted = ['hello/1.0.0', 'depends-exporter/1.0'].flatMap((m) => kernels.map((k) => `${m} ${k} built`)).sort();
    expect(rows).toEqual(wanted);
    expect(report.summary).toEqual({ built: wanted.length, excluded: 0, failed: 0 });
    expect(report.modules?.map((m) => `${m.name}/${m.version}`)).toEqual(['hello/1.0.0', 'depends-exporter/1.0']);
    expect(report.modules?.map((m) => m.summary.built)).toEqual([kernels.length, kernels.length]);
  });

  it("keeps each module's logs apart and writes each module's tarballs", async () => {
    for (const k of report.kernels) {
      expect(k.log).toBe(`logs/${k.module}-${k.version}/${k.kernel}.log`);
      expect(await readFile(path.join(out, k.log), 'utf8')).toContain(`KERNELRELEASE=${k.kernel}`);
      await access(path.join(out, k.tarball?.path ?? 'missing'));
    }
    for (const m of report.modules ?? []) await access(path.join(out, m.fullTarball?.path ?? 'missing'));
    expect(report.modules?.[0]?.fullTarball?.path).toBe('hello-1.0.0.dkms.tar.gz');
    expect(report.modules?.[1]?.fullTarball?.path).toBe('depends-exporter-1.0.dkms.tar.gz');
  });

  it("prints a table per module and the run's total", () => {
    expect(result.stdout).toMatch(/^hello 1\.0\.0$/m);
    expect(result.stdout).toMatch(/^depends-exporter 1\.0$/m);
    expect(result.stdout).toMatch(/^2 modules: \d+ built, 0 excluded, 0 failed in /m);
  });

  it('refuses the same source given twice (exit 2) before building', async () => {
    const again = await kfarm(['build', example('hello'), example('hello'), '--out', await tempDir('several-twice')], env);
    expect(again.exitCode, again.stderr).toBe(2);
    expect(again.stderr).toMatch(/same module source/);
  });
});
