import { execa } from 'execa';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BuildReport } from '../../src/report/report.js';
import { fixture, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

const readReport = async (out: string) => JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
const exists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  );

/**
 * A module input kfarm refuses (exit 2) still writes report.json, junit.xml and report.html:
 * every requested kernel failed, with the reason, so a CI step that publishes test results
 * finds them. Refusals where the kernels are not known (or that are not about the module) write none.
 */
describe('a refused module input: exit 2, and the report says every kernel failed', () => {
  it('a dkms.conf no kernel can use (no PACKAGE_NAME): every requested kernel failed bad-conf, in report.json, junit.xml, report.html and --junit', async () => {
    const env = await isolatedEnv('refused-conf');
    const kernels = (env.KFARM_KERNELS as string).split(',');
    const out = await tempDir('refused-conf-out');
    const junit = path.join(await tempDir('refused-conf-ci'), 'results', 'kfarm.xml');
    // one at a time: the refusal comes with the first kernel, the others never ran
    const r = await kfarm(['build', fixture('no-name'), '--out', out, '--concurrency', '1', '--junit', junit], env);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain("No 'PACKAGE_NAME' directive specified");
    const report = await readReport(out);
    expect(report.summary).toEqual({ built: 0, excluded: 0, failed: kernels.length });
    expect(report.kernels.map((k) => k.kernel).sort()).toEqual([...kernels].sort());
    for (const k of report.kernels) {
      expect(k).toMatchObject({ verdict: 'failed', reason: 'bad-conf', cached: false, modules: [] });
      expect(k.message).toContain("is not usable: No 'PACKAGE_NAME' directive specified");
      const log = await readFile(path.join(out, k.log), 'utf8');
      expect(log).toContain('[kfarm] not built: kfarm refused the module input (exit 2)');
      expect(log).toContain("No 'PACKAGE_NAME' directive specified");
    }
    const xml = await readFile(path.join(out, 'junit.xml'), 'utf8');
    expect(xml).toContain(`tests="${kernels.length}" failures="${kernels.length}"`);
    expect((xml.match(/<failure /g) ?? []).length).toBe(kernels.length);
    expect(await readFile(junit, 'utf8')).toBe(xml);
    expect(await readFile(path.join(out, 'report.html'), 'utf8')).toContain('bad-conf');
    expect(r.stderr).toContain(`${out}/report.json`);
  }, 600_000);

  it('a source tree kfarm will not pack (a fifo): every requested kernel failed bad-source, nothing built', async () => {
    const env = await isolatedEnv('refused-fifo');
    const kernels = (env.KFARM_KERNELS as string).split(',');
    const src = await tempDir('refused-fifo-src');
    await writeFile(path.join(src, 'dkms.conf'), 'PACKAGE_NAME="fifo"\nPACKAGE_VERSION="1"\nBUILT_MODULE_NAME[0]="fifo"\nDEST_MODULE_LOCATION[0]="/extra"\n');
    await execa('mkfifo', [path.join(src, 'pipe')]);
    const out = await tempDir('refused-fifo-out');
    const r = await kfarm(['build', src, '--out', out], env, 120_000);
    expect(r.exitCode, r.stderr).toBe(2);
    const report = await readReport(out);
    expect(report.module).toBe(path.basename(src));
    expect(report.version).toBe('unknown');
    expect(report.kernels.map((k) => k.kernel).sort()).toEqual([...kernels].sort());
    for (const k of report.kernels) {
      expect(k).toMatchObject({ verdict: 'failed', reason: 'bad-source' });
      expect(k.firstError).toContain('pipe is a fifo: a module source holds only files, directories and symlinks');
    }
    expect(await readFile(path.join(out, 'junit.xml'), 'utf8')).toContain(`failures="${kernels.length}"`);
    expect(await exists(path.join(out, 'report.html'))).toBe(true);
  }, 300_000);

  it('no report where the kernels are not known or the source is not there: a selector that matches nothing, a missing source dir', async () => {
    const env = await isolatedEnv('refused-none');
    const src = await tempDir('refused-none-src');
    await writeFile(path.join(src, 'dkms.conf'), 'PACKAGE_NAME="fifo"\nPACKAGE_VERSION="1"\nBUILT_MODULE_NAME[0]="fifo"\nDEST_MODULE_LOCATION[0]="/extra"\n');
    await execa('mkfifo', [path.join(src, 'pipe')]);
    const out = await tempDir('refused-none-out');
    // the refusal is still the error (exit 2 naming the fifo), but no kernel matches: nothing to report on
    const r = await kfarm(['build', src, '--out', out, '--kernels', '9.9.*'], env, 120_000);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain('pipe is a fifo');
    expect(await exists(path.join(out, 'report.json'))).toBe(false);
    const missing = await kfarm(['build', path.join(src, 'no-such-dir'), '--out', out], env, 120_000);
    expect(missing.exitCode, missing.stderr).toBe(2);
    expect(await exists(path.join(out, 'report.json'))).toBe(false);
    expect(await exists(path.join(out, 'junit.xml'))).toBe(false);
  }, 300_000);
});
