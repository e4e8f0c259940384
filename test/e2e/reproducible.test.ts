import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/process/run.js';
import { example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

/**
 * The same inputs give the same bytes: two builds of examples/hello from nothing (--no-cache:
 * every module compiled again) with SOURCE_DATE_EPOCH set write byte-identical tarballs, and
 * SHA256SUMS in the out dir checks with the real sha256sum.
 */
let env: Record<string, string>;

beforeAll(async () => {
  env = { ...(await isolatedEnv('reproducible')), SOURCE_DATE_EPOCH: '1700000000' };
});

describe('reproducible outputs', () => {
  it('two cold builds with SOURCE_DATE_EPOCH write identical tarballs and a SHA256SUMS that checks', async () => {
    const outs = [await tempDir('repro-a'), await tempDir('repro-b')];
    for (const out of outs) {
      const built = await kfarm(['build', example('hello'), '--out', out, '--no-cache'], env);
      expect(built.exitCode, built.stderr).toBe(0);
    }
    const sums = await Promise.all(outs.map((out) => readFile(path.join(out, 'SHA256SUMS'), 'utf8')));
    expect(sums[0]).toMatch(/^[0-9a-f]{64} {2}hello-1\.0\.0\.dkms\.tar\.gz$/m);
    expect(sums[0]).toMatch(/^[0-9a-f]{64} {2}report\.json$/m);
    // report.json holds times and durations; every other deliverable is the same bytes
    const withoutReport = (s: string) => s.split('\n').filter((l) => !l.endsWith('  report.json')).join('\n');
    expect(withoutReport(sums[1] ?? '')).toBe(withoutReport(sums[0] ?? ''));
    for (const out of outs) {
      const check = await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out });
      expect(check.exitCode, check.stdout).toBe(0);
    }
  }, 900_000);
});
