import { cp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { extractTar } from '../../src/executor/archive.js';
import { run } from '../../src/process/run.js';
import type { BuildReport } from '../../src/report/report.js';
import { packageRoot } from '../../src/paths.js';
import { debian12Kernels, fixture, isolatedEnv, kfarm, tempDir, type CliRun } from '../helpers/kfarm-cli.js';
import { releaseKernel } from '../helpers/run-driver.js';

const readReport = async (out: string) => JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;

/** A copy of a fixture with one file rewritten, in a temp dir. */
async function variant(name: string, file: string, edit: (text: string) => string, from: (name: string) => string = fixture, as = name): Promise<string> {
  const dir = path.join(await tempDir(`${as}-variant`), as);
  await cp(from(name), dir, { recursive: true });
  await writeFile(path.join(dir, file), edit(await readFile(path.join(dir, file), 'utf8')));
  return dir;
}

/** BUILD_DEPENDS across sources of one `kfarm build`, dependencies first, as `dkms autoinstall` orders them on a host. */
describe('kfarm build with BUILD_DEPENDS', () => {
  let env: Record<string, string>;
  let out: string;
  let result: CliRun;
  let report: BuildReport;

  beforeAll(async () => {
    env = await isolatedEnv('depends');
    out = await tempDir('depends-out');
    // the dependent first on the command line: the order comes from BUILD_DEPENDS, not from the arguments
    result = await kfarm(['build', fixture('depends-user'), fixture('depends-exporter'), '--out', out], env);
    report = await readReport(out);
  }, 900_000);

  it('builds the dependency on each kernel before the dependent starts there', () => {
    // off a terminal progress prints one line per finished kernel, in the order they finished
    const lines = result.stderr.split('\n').filter((l) => /^\[\d+\/\d+\] depends-(exporter|user): /.test(l));
    const kernels = env.KFARM_KERNELS?.split(',') ?? [];
    expect(lines).toHaveLength(2 * kernels.length);
    const lastExporter = lines.findLastIndex((l) => l.includes('depends-exporter: '));
    const firstUser = lines.findIndex((l) => l.includes('depends-user: '));
    expect(lastExporter, result.stderr).toBeLessThan(firstUser);
    expect(report.modules?.map((m) => m.name)).toEqual(['depends-user', 'depends-exporter']);
  });

  it("builds the dependent against the dependency's Module.symvers: modinfo names depends-exporter's module", async () => {
    expect(result.exitCode, result.stderr).toBe(0);
    const rows = report.kernels.filter((k) => k.module === 'depends-user');
    expect(rows.map((k) => k.verdict)).toEqual(rows.map(() => 'built'));
    // the dependency was there on every kernel: nothing to warn about
    expect(report.warnings.join('\n')).not.toContain('BUILD_DEPENDS names');
    for (const k of rows) {
      const tarball = gunzipSync(await readFile(path.join(out, k.tarball?.path ?? 'missing')));
      const entries = await extractTar(tarball, { maxBytes: 1 << 26, maxEntries: 100, allowSymlinks: false }, 'tarball');
      const ko = entries.find((e) => /^dkms_main_tree\/[^/]+\/[^/]+\/module\/kfarm_user\.ko/.test(e.path));
      expect(ko?.data, `kfarm_user.ko for ${k.kernel}`).toBeDefined();
      const file = path.join(os.tmpdir(), `kfarm_user-${k.kernel}-${process.pid}.ko`);
      await writeFile(file, ko?.data ?? Buffer.alloc(0));
      expect((await run('modinfo', ['-F', 'depends', file])).stdout.trim()).toBe('kfarm_exporter');
    }
  });

  it("where the dependency failed, bookworm's dkms 3.0.10 still builds the dependent (BUILD_DEPENDS does not stop `dkms build`): it fails at modpost, with a warning naming the dependency", async () => {
    const exporter = await variant('depends-exporter', 'kfarm_exporter.c', (c) =>
      c.replace(
        '#include <linux/kernel.h>',
        '#include <linux/kernel.h>\n#include <linux/version.h>\n#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)\n#error not on 6.12\n#endif',
      ),
    );
    const out2 = await tempDir('depends-fails-out');
    const run2 = await kfarm(['build', exporter, fixture('depends-user'), '--out', out2], env);
    expect(run2.exitCode, run2.stderr).toBe(1);
    const r = await readReport(out2);
    const on612 = r.kernels.filter((k) => k.kernel.startsWith('6.12.'));
    expect(on612.map((k) => [k.module, k.verdict, k.reason])).toEqual([
      ['depends-exporter', 'failed', 'make-failed'],
      ['depends-user', 'failed', 'make-failed'],
    ]);
    const user = on612.find((k) => k.module === 'depends-user');
    expect(user?.durationMs).toBeGreaterThan(0);
    expect(await readFile(path.join(out2, user?.log ?? 'missing'), 'utf8')).toMatch(/modpost: "kfarm_exporter_answer" \[.*kfarm_user\.ko\] undefined/);
    expect(JSON.stringify(r.warnings)).toMatch(/BUILD_DEPENDS names depends-exporter, which was not built for 6\.12\.[^ ]+ in this run: dkms 3\.0 builds the module without it/);
    // where it built, the dependent built against it as before
    expect(r.kernels.filter((k) => !k.kernel.startsWith('6.12.')).map((k) => k.verdict)).toEqual(r.kernels.filter((k) => !k.kernel.startsWith('6.12.')).map(() => 'built'));
  });
});

/**
 * BUILD_DEPENDS that no source of the run satisfies: each kernel gets what its release's own
 * `dkms build` does (docs/dkms-releases.md): bookworm's 3.0.10 builds the module with a warning
 * naming the dependency, trixie's 3.2.2 fails it (`missing-dependency`, its exit 13). Nothing
 * is refused up front.
 */
describe('kfarm build with BUILD_DEPENDS no source of the run provides, per release', () => {
  let env: Record<string, string>;
  let k12 = '';
  let k13 = '';
  const language = (name: string) => path.join(packageRoot, 'test', 'fixtures', 'dkms-language', name);

  beforeAll(async () => {
    env = await isolatedEnv('depends-outside');
    k12 = (await debian12Kernels()).k61;
    k13 = await releaseKernel('debian-13');
  }, 1_500_000);

  it('a dependency that is not a source of the run: built on debian-12 with a warning, missing-dependency on debian-13 (exit 1, with a report)', async () => {
    const out = await tempDir('depends-outside-out');
    const run = await kfarm(['build', language('build-depends-outside'), '--kernels', `${k12},${k13}`, '--out', out], env);
    expect(run.exitCode, run.stderr).toBe(1);
    const r = await readReport(out);
    expect(r.kernels.map((k) => [k.kernel, k.verdict, k.reason])).toEqual([
      [k12, 'built', undefined],
      [k13, 'failed', 'missing-dependency'],
    ]);
    expect(r.kernels[1]?.message).toContain('due to missing BUILD_DEPENDS: dl_not_in_this_run');
    expect(r.warnings.join('\n')).toContain(`BUILD_DEPENDS names dl_not_in_this_run, which was not built for ${k12} in this run: dkms 3.0 builds the module without it`);
    expect(run.stderr).toMatch(/BUILD_DEPENDS names dl_not_in_this_run/);
  });

  it('a cycle: each module builds on debian-12 (without the other), each fails on debian-13', async () => {
    const cycle = async (me: string, other: string) =>
      variant(
        'build-depends-outside',
        'dkms.conf',
        (c) => c.replace('PACKAGE_NAME="dl_build_depends_outside"', `PACKAGE_NAME="${me}"`).replace('BUILD_DEPENDS[0]="dl_not_in_this_run"', `BUILD_DEPENDS[0]="${other}"`),
        language,
        me,
      );
    const a = await cycle('dl_cycle_a', 'dl_cycle_b');
    const b = await cycle('dl_cycle_b', 'dl_cycle_a');
    const out = await tempDir('depends-cycle-out');
    const run = await kfarm(['build', a, b, '--kernels', `${k12},${k13}`, '--out', out], env);
    expect(run.exitCode, run.stderr).toBe(1);
    const r = await readReport(out);
    const cells = r.kernels.map((k) => [k.module, k.kernel, k.verdict, k.reason]).sort((x, y) => String(x).localeCompare(String(y)));
    expect(cells).toEqual([
      ['dl_cycle_a', k12, 'built', undefined],
      ['dl_cycle_a', k13, 'failed', 'missing-dependency'],
      ['dl_cycle_b', k12, 'built', undefined],
      ['dl_cycle_b', k13, 'failed', 'missing-dependency'],
    ]);
    expect(r.warnings.join('\n')).toContain('BUILD_DEPENDS names dl_cycle_b');
    expect(r.warnings.join('\n')).toContain('BUILD_DEPENDS names dl_cycle_a');
  });
});
