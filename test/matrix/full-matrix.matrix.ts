import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildReport, KernelReport } from '../../src/report/report.js';
import { vermagicProblems } from '../helpers/matrix-checks.js';
import { ingestPerRelease } from '../helpers/release-dkms.js';

/**
 * The checks of scripts/full-matrix.sh over the out dir of `kfarm build examples/hello
 * --kernels all` (KFARM_MATRIX_OUT): every kernel built, every .ko's vermagic names its kernel,
 * every per-kernel tarball listed as built by the dkms of its own release.
 */
const out = process.env.KFARM_MATRIX_OUT ?? '';
let report: BuildReport;
let scratch: string;

const byRelease = (rows: readonly KernelReport[]) => {
  const groups = new Map<string, KernelReport[]>();
  for (const k of rows) groups.set(k.image, [...(groups.get(k.image) ?? []), k]);
  return groups;
};

beforeAll(async () => {
  expect(out, "KFARM_MATRIX_OUT names the build's --out").not.toBe('');
  report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
  scratch = await mkdtemp(path.join(os.tmpdir(), 'kfarm-matrix-'));
});

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('the full matrix', () => {
  it('built every kernel', () => {
    const counts = [...byRelease(report.kernels)].map(([release, rows]) => {
      const arches = [...new Set(rows.map((r) => r.arch))].map((a) => `${a} ${rows.filter((r) => r.arch === a).length}`);
      return `${release}: ${rows.length} (${arches.join(', ')})`;
    });
    console.log(`[matrix] ${report.kernels.length} kernels: ${counts.join('; ')}`);
    const failed = report.kernels.filter((k) => k.verdict !== 'built').map((k) => `${k.kernel}: ${k.verdict} ${k.reason ?? ''} ${k.firstError ?? k.message ?? ''}`);
    expect(failed).toEqual([]);
  });

  it("every .ko's vermagic names its kernel and arch", async () => {
    expect(await vermagicProblems(out, report.kernels, scratch)).toEqual([]);
  });

  it('every per-kernel tarball is listed as built by the dkms of its own release', async () => {
    const missing: string[] = [];
    for (const [release, rows] of byRelease(report.kernels)) {
      const tarballs = await Promise.all(
        rows.map(async (k) => ({
          name: k.tarball?.path ?? 'missing',
          data: await readFile(path.join(out, k.tarball?.path ?? 'missing')),
          kernel: k.kernel,
          arch: k.arch as 'x86_64' | 'aarch64',
        })),
      );
      const started = Date.now();
      const result = await ingestPerRelease(release as 'debian-11' | 'debian-12' | 'debian-13', tarballs, report.module, report.version);
      const listed = result.kernels.filter((k) => k.listed).length;
      console.log(`[matrix] ${release}: dkms ${result.dkmsVersion} listed ${listed}/${rows.length} as built in ${Math.round((Date.now() - started) / 1000)} s`);
      for (const k of result.kernels) if (!k.listed) missing.push(`${release} ${k.kernel}: not listed (ldtarball exit ${k.ldtarballExit})`);
    }
    expect(missing).toEqual([]);
  });
});
