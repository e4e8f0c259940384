import { cp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { extractTar } from '../../src/executor/archive.js';
import { run } from '../../src/process/run.js';
import type { BuildReport } from '../../src/report/report.js';
import { fixture, isolatedEnv, kfarm, tempDir, type CliRun } from '../helpers/kfarm-cli.js';

const readReport = async (out: string) => JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;

/** A copy of a fixture with one file rewritten, in a temp dir. */
async function variant(name: string, file: string, edit: (text: string) => string): Promise<string> {
  const dir = path.join(await tempDir(`${name}-variant`), name);
  await cp(fixture(name), dir, { recursive: true });
  await writeFile(path.join(dir, file), edit(await readFile(path.join(dir, file), 'utf8')));
  return dir;
}

/** BUILD_DEPENDS across sources of one `kfarm build`, as `dkms autoinstall` orders them on a host. */
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

  it('fails the dependent with missing-dependency where the dependency failed, without a container', async () => {
    const exporter = await variant('depends-exporter', 'kfarm_exporter.c', (c) =>
      c.replace('#include <linux/kernel.h>', '#include <linux/kernel.h>\n#include <linux/version.h>\n#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)\n#error not on 6.12\n#endif'),
    );
    const out2 = await tempDir('depends-fails-out');
    const run2 = await kfarm(['build', exporter, fixture('depends-user'), '--out', out2], env);
    expect(run2.exitCode, run2.stderr).toBe(1);
    const r = await readReport(out2);
    const on612 = r.kernels.filter((k) => k.kernel.startsWith('6.12.'));
    expect(on612.length).toBeGreaterThanOrEqual(1);
    for (const k of on612.filter((k) => k.module === 'depends-exporter')) expect(k.reason).toBe('make-failed');
    for (const k of on612.filter((k) => k.module === 'depends-user')) {
      expect(k.verdict).toBe('failed');
      expect(k.reason).toBe('missing-dependency');
      expect(k.message).toMatch(/depends-exporter \(failed: make-failed\)/);
      expect(k.durationMs).toBe(0);
      expect(await readFile(path.join(out2, k.log), 'utf8')).toMatch(/not built: BUILD_DEPENDS not built on this kernel/);
    }
  });

  it('refuses a BUILD_DEPENDS cycle before building anything (exit 2)', async () => {
    const exporter = await variant('depends-exporter', 'dkms.conf', (c) => `${c}BUILD_DEPENDS[0]="depends-user"\n`);
    const out3 = await tempDir('depends-cycle-out');
    const run3 = await kfarm(['build', exporter, fixture('depends-user'), '--out', out3], env);
    expect(run3.exitCode, run3.stderr).toBe(2);
    expect(run3.stderr).toMatch(/BUILD_DEPENDS form a cycle among depends-exporter, depends-user/);
    await expect(readFile(path.join(out3, 'report.json'))).rejects.toThrow();
  });

  it('refuses a BUILD_DEPENDS that names no source of the build (exit 2)', async () => {
    const alone = await kfarm(['build', fixture('depends-user'), '--out', await tempDir('depends-alone-out')], env);
    expect(alone.exitCode, alone.stderr).toBe(2);
    expect(alone.stderr).toMatch(/BUILD_DEPENDS names depends-exporter, which no source of this build provides/);
  });
});
