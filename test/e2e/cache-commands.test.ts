import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BuildReport } from '../../src/report/report.js';
import { debian12Kernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

const { k61, k61b } = await debian12Kernels();

/** The result store on disk through the real CLI: warm builds without Redis, and `kfarm cache`. */
describe('result store and kfarm cache', () => {
  let env: Record<string, string>;
  const build = async () => {
    const out = await tempDir('cache-out');
    const run = await kfarm(['build', example('hello'), '--kernels', `${k61},${k61b}`, '--out', out], env);
    expect(run.exitCode, run.stderr).toBe(0);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
    const cached = Object.fromEntries(report.kernels.map((k) => [k.kernel, k.cached]));
    return { run, report, cached };
  };
  const blobFile = (sha256: string) => path.join(env.KFARM_STATE_DIR as string, 'results', 'blobs', sha256.slice(0, 2), sha256);
  const moduleSha = (report: BuildReport, kernel: string) => report.kernels.find((k) => k.kernel === kernel)?.modules[0]?.sha256 as string;
  const corrupt = async (sha256: string) => {
    const data = await readFile(blobFile(sha256));
    data[data.length >> 1] = (data[data.length >> 1] ?? 0) ^ 0xff;
    await writeFile(blobFile(sha256), data);
  };
  let first: Awaited<ReturnType<typeof build>>;
  let second: Awaited<ReturnType<typeof build>>;
  let redisLog: { before: number; after: number };

  beforeAll(async () => {
    env = { ...(await isolatedEnv('cache')), KFARM_LOG_LEVEL: 'info' };
    first = await build();
    const log = path.join(env.KFARM_STATE_DIR as string, 'redis', 'redis.log');
    const before = (await stat(log)).size;
    second = await build();
    redisLog = { before, after: (await stat(log)).size };
  }, 600_000);

  it('a first build runs on the private Redis; the second is all cached from disk and starts no redis-server', () => {
    expect(first.run.stderr).toContain('private Redis started');
    expect(first.cached).toEqual({ [k61]: false, [k61b]: false });
    expect(second.cached).toEqual({ [k61]: true, [k61b]: true });
    expect(second.run.stderr).not.toMatch(/private Redis (started|stopped)|sharing the private Redis/);
    expect(second.run.stderr).toContain('every job found in the result store: no farm session opened');
    expect(redisLog.after).toBe(redisLog.before);
    expect(moduleSha(second.report, k61)).toBe(moduleSha(first.report, k61));
  });

  it('cache ls lists each result with module, kernel and size, and the totals', async () => {
    const ls = await kfarm(['cache', 'ls'], env);
    expect(ls.exitCode, ls.stderr).toBe(0);
    const lines = ls.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const k of [k61, k61b]) expect(lines.find((l) => l.includes(k))).toMatch(/hello\/1\.0\.0\s+\S+\s+built\s+\d+(\.\d)?[KMG]/);
    expect(lines[2]).toMatch(/^2 result\(s\), \d+(\.\d)?[KMG] on disk of 4G in /);
  });

  it('a corrupted blob is never served: the next build rebuilds that kernel only', async () => {
    await corrupt(moduleSha(first.report, k61));
    const third = await build();
    // built again, or (within a few seconds of the last build) still in Redis's short keep; never the corrupt blob
    expect(third.cached[k61b]).toBe(true);
    expect(third.run.stderr).toMatch(/result store: entry not intact/);
    expect(third.run.stderr).not.toContain('no farm session opened');
    expect(moduleSha(third.report, k61)).toBe(moduleSha(first.report, k61));
    const verify = await kfarm(['cache', 'verify'], env);
    expect(verify.exitCode, verify.stdout).toBe(0);
  });

  it('cache verify finds a corrupt blob, removes it and exits 1; then all is intact and the kernel is rebuilt', async () => {
    await corrupt(moduleSha(first.report, k61b));
    const verify = await kfarm(['cache', 'verify'], env);
    expect(verify.exitCode).toBe(1);
    expect(verify.stdout).toMatch(new RegExp(`corrupt: blob ${moduleSha(first.report, k61b).slice(0, 12)}`));
    expect(verify.stdout).toMatch(/1 corrupt|2 corrupt/);
    const again = await kfarm(['cache', 'verify'], env);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toMatch(/all intact/);
    const fourth = await build();
    expect(fourth.cached[k61]).toBe(true);
    expect(fourth.run.stderr).not.toContain('no farm session opened');
    expect(moduleSha(fourth.report, k61b)).toBe(moduleSha(first.report, k61b));
    // both whole in the store again
    const fifth = await build();
    expect(fifth.cached).toEqual({ [k61]: true, [k61b]: true });
    expect(fifth.run.stderr).toContain('no farm session opened');
  });

  it('cache prune --max-size shrinks the store; 0 empties it', async () => {
    const bad = await kfarm(['cache', 'prune', '--max-size', 'lots'], env);
    expect(bad.exitCode).toBe(2);
    const keep = await kfarm(['cache', 'prune', '--max-size', '4G'], env);
    expect(keep.stdout).toMatch(/^removed 0 result\(s\)/);
    const prune = await kfarm(['cache', 'prune', '--max-size', '0'], env);
    expect(prune.exitCode, prune.stderr).toBe(0);
    expect(prune.stdout).toMatch(/^removed 2 result\(s\) and \d+ blob\(s\): \S+ -> 0B/);
    expect((await kfarm(['cache', 'ls'], env)).stdout).toMatch(/^0 result\(s\), 0B on disk/);
  });
});
