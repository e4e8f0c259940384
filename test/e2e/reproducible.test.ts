import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/process/run.js';
import { PACKABLE_FORMATS } from '../../src/packaging/packers.js';
import { kmmTag } from '../../src/packaging/kmm/layout.js';
import type { BuildReport } from '../../src/report/report.js';
import { example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

/**
 * The same inputs give the same bytes: two builds of examples/hello from nothing (--no-cache:
 * every module compiled again) with SOURCE_DATE_EPOCH set, in every format kfarm has, write
 * byte-identical tarballs and packages, and SHA256SUMS in the out dir checks with the real
 * sha256sum. `kfarm pack` of an out dir makes the same packages again without building, and
 * refuses an out dir whose tarball no longer matches report.json.
 */
let env: Record<string, string>;

/** Each file under dir that `keep` keeps (relative path): its sha256 and mtime, to tell whether anything was rewritten. */
async function snapshot(dir: string, keep: (relative: string) => boolean): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const abs = path.join(e.parentPath, e.name);
    const rel = path.relative(dir, abs);
    if (!e.isFile() || !keep(rel)) continue;
    files[rel] = `${createHash('sha256')
      .update(await readFile(abs))
      .digest('hex')} ${(await stat(abs)).mtimeMs}`;
  }
  return files;
}

beforeAll(async () => {
  env = { ...(await isolatedEnv('reproducible')), SOURCE_DATE_EPOCH: '1700000000' };
});

describe('reproducible outputs', () => {
  it('two cold builds with SOURCE_DATE_EPOCH write identical tarballs and a SHA256SUMS that checks', async () => {
    const outs = [await tempDir('repro-a'), await tempDir('repro-b')];
    for (const out of outs) {
      const built = await kfarm(['build', example('hello'), '--out', out, '--no-cache', '--format', ['dkms-tarball', ...PACKABLE_FORMATS()].join(',')], env);
      expect(built.exitCode, built.stderr).toBe(0);
    }
    const sums = await Promise.all(outs.map((out) => readFile(path.join(out, 'SHA256SUMS'), 'utf8')));
    expect(sums[0]).toMatch(/^[0-9a-f]{64} {2}hello-1\.0\.0\.dkms\.tar\.gz$/m);
    expect(sums[0]).toMatch(/^[0-9a-f]{64} {2}report\.json$/m);
    for (const format of PACKABLE_FORMATS()) expect(sums[0], format).toMatch(new RegExp(`^[0-9a-f]{64} {2}${format}/`, 'm'));
    // report.json and its views (junit.xml, report.html) hold times and durations; every other deliverable is the same bytes
    const withoutReport = (s: string) => s.split('\n').filter((l) => !/ {2}(report\.json|junit\.xml|report\.html)$/.test(l));
    expect(withoutReport(sums[1] ?? '')).toEqual(withoutReport(sums[0] ?? ''));
    for (const out of outs) {
      const check = await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out });
      expect(check.exitCode, check.stdout).toBe(0);
    }
  }, 900_000);

  it('kfarm pack makes the same packages from an out dir without building, and refuses one that changed', async () => {
    const out = await tempDir('repro-pack');
    const built = await kfarm(['build', example('hello'), '--out', out], env);
    expect(built.exitCode, built.stderr).toBe(0);
    const buildReport = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
    const kernels = buildReport.kernels.filter((k) => k.verdict === 'built').map((k) => k.kernel);
    expect(kernels.length).toBeGreaterThanOrEqual(2);
    // Without building: pack has no Docker engine to build with, and leaves the build's results
    // (tarballs, logs, report rows) and the result store exactly as they were.
    const noEngine = { ...env, DOCKER_HOST: `unix://${path.join(out, 'no-docker.sock')}` };
    const buildOutputs = async () => snapshot(out, (f) => f.endsWith('.dkms.tar.gz') || f.startsWith('logs/'));
    const results = async () => snapshot(path.join(env.KFARM_STATE_DIR ?? '', 'results'), () => true);
    const before = { outputs: await buildOutputs(), results: await results() };
    expect(Object.keys(before.outputs).filter((f) => f.endsWith('.dkms.tar.gz'))).toHaveLength(kernels.length + 1);
    expect(Object.keys(before.results).length).toBeGreaterThan(0);
    const formats = PACKABLE_FORMATS();
    const packed = await kfarm(['pack', out, '--format', formats.join(',')], noEngine);
    expect(packed.exitCode, packed.stderr).toBe(0);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport & { packages?: Array<{ format: string; path: string }> };
    expect(report.kernels).toEqual(buildReport.kernels);
    expect(await buildOutputs()).toEqual(before.outputs);
    expect(await results()).toEqual(before.results);
    const first = await readFile(path.join(out, 'SHA256SUMS'), 'utf8');
    const again = await kfarm(['pack', out, '--format', formats.join(',')], noEngine);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(await readFile(path.join(out, 'SHA256SUMS'), 'utf8')).toBe(first);
    expect(new Set(report.packages?.map((p) => p.format))).toEqual(new Set(formats));
    expect((await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out })).exitCode).toBe(0);
    // --load puts the KMM images into the local engine under the Module's references: one per built kernel
    const images = report.packages?.filter((p) => p.format === 'kmm' && p.path.endsWith('.oci.tar')) ?? [];
    expect(images).toHaveLength(kernels.length);
    const loaded = await kfarm(['pack', out, '--format', 'kmm', '--load'], env);
    expect(loaded.exitCode, loaded.stderr).toBe(0);
    const refs = [...loaded.stdout.matchAll(/^loaded\s+(\S+)$/gm)].map((m) => m[1] ?? '');
    expect(refs.sort()).toEqual(kernels.map((k) => `kfarm.local/hello-kmm:${kmmTag('1.0.0', k)}`).sort());
    for (const ref of refs) {
      expect((await run('docker', ['image', 'inspect', ref], { allowFailure: true })).exitCode, ref).toBe(0);
      await run('docker', ['rmi', ref]);
    }
    // a tarball that no longer matches report.json is refused, and the packages stay as they were
    const tarball = (await readdir(out)).find((f) => f.includes('-kernel') && f.endsWith('.dkms.tar.gz')) ?? 'missing';
    await writeFile(path.join(out, tarball), Buffer.from('not a tarball'));
    const refused = await kfarm(['pack', out, '--format', formats.join(',')], noEngine);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain(`${tarball} does not match the sha256 report.json gives`);
    const listed = (await readFile(path.join(out, 'SHA256SUMS'), 'utf8')).split('\n').filter((l) => !l.includes('dkms.tar.gz') && !l.endsWith('report.json'));
    expect(listed).toEqual(first.split('\n').filter((l) => !l.includes('dkms.tar.gz') && !l.endsWith('report.json')));
  }, 900_000);
});
