import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishApt } from '../../src/publish/apt-repo.js';
import { debian12Kernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';
import { repoTestKeys, type RepoTestKeys } from '../helpers/repo-test-key.js';

/**
 * One new kernel published into a repository that holds 200 kernels' packages: only its
 * package is added (the other 200 pool files keep their bytes), the metapackage moves, and it
 * takes seconds, not a rebuild of the repository (docs/publishing.md gives the measured time).
 * The 200 kernels are made from one real build of hello: the real report row and bmdeb, renamed
 * per kernel (6.1.0-1001-amd64 ... 6.1.0-1200-amd64) with dpkg-deb.
 */
const { k61: K } = await debian12Kernels();
const logger = pino({ level: 'silent' });
const KERNELS = Array.from({ length: 200 }, (_, i) => `6.1.0-${1001 + i}-amd64`);
const NEW_KERNEL = '6.1.0-1201-amd64';

let keys: RepoTestKeys;
let dir: string;
let real: string;

interface Report {
  kernels: Array<Record<string, unknown> & { kernel: string }>;
  packages: Array<{ format: string; path: string; sha256: string; size: number }>;
}

/** an out dir holding the real build's report, its rows and bmdebs renamed to the given kernels */
async function synthesise(name: string, kernels: readonly string[]): Promise<string> {
  const out = path.join(dir, name);
  await mkdir(path.join(out, 'bmdeb'), { recursive: true });
  const report = JSON.parse(await readFile(path.join(real, 'report.json'), 'utf8')) as Report;
  const row = report.kernels[0]!;
  const deb = path.join(real, report.packages.find((p) => p.format === 'bmdeb')!.path);
  const tree = path.join(dir, `tree-${name}`);
  await rm(tree, { recursive: true, force: true });
  await execa('dpkg-deb', ['-R', deb, tree]);
  const control = await readFile(path.join(tree, 'DEBIAN/control'), 'utf8');
  const rows = [];
  const packages = [];
  for (const k of kernels) {
    const kt = path.join(dir, `tree-${name}-${k}`);
    await cp(tree, kt, { recursive: true });
    await execa('mv', [path.join(kt, 'lib/modules', K), path.join(kt, 'lib/modules', k)]);
    await writeFile(path.join(kt, 'DEBIAN/control'), control.split(K).join(k));
    for (const s of ['postinst', 'postrm']) await writeFile(path.join(kt, 'DEBIAN', s), (await readFile(path.join(kt, 'DEBIAN', s), 'utf8')).split(K).join(k));
    const rel = `bmdeb/hello-modules-${k}_1.0.0_amd64.deb`;
    await execa('dpkg-deb', ['--root-owner-group', '-b', kt, path.join(out, rel)]);
    await rm(kt, { recursive: true });
    const data = await readFile(path.join(out, rel));
    packages.push({ format: 'bmdeb', path: rel, sha256: createHash('sha256').update(data).digest('hex'), size: data.length });
    rows.push(JSON.parse(JSON.stringify(row).split(K).join(k)) as Record<string, unknown>);
  }
  await writeFile(path.join(out, 'report.json'), JSON.stringify({ ...report, kernels: rows, packages }));
  return out;
}

beforeAll(async () => {
  keys = await repoTestKeys();
  dir = await tempDir('publish-apt-scale');
  real = path.join(dir, 'real');
  const result = await kfarm(['build', example('hello'), '--out', real, '--kernels', K, '--format', 'bmdeb'], await isolatedEnv('publish-apt-scale'));
  expect(result.exitCode, result.stderr).toBe(0);
}, 900_000);
afterAll(async () => keys?.close());

describe('publishApt at scale', () => {
  it('adds one kernel to a repository of 200 in seconds, touching no other package', async () => {
    const repo = path.join(dir, 'repo');
    const many = await synthesise('out-200', KERNELS);
    const one = await synthesise('out-1', [NEW_KERNEL]);
    const first = await publishApt({ repoDir: repo, outDirs: [many], keyFile: keys.plain, logger });
    expect(first.plan.add).toHaveLength(200);
    const poolSums = async () => (await execa('bash', ['-c', 'cd "$1" && find pool -type f -print0 | sort -z | xargs -0 sha256sum', '-', repo])).stdout.split('\n');
    const before = await poolSums();
    const started = Date.now();
    const second = await publishApt({ repoDir: repo, outDirs: [one], keyFile: keys.plain, logger });
    const ms = Date.now() - started;
    const { stdout: size } = await execa('du', ['-sh', '--exclude=.kfarm', repo]);
    console.log(`[publish-apt-scale] 200 kernels at once: ${first.durationMs} ms; one more kernel: ${ms} ms; repository ${size.split('\t')[0]} (without .kfarm)`);
    expect(second.plan.add.map((a) => a.pkg.package)).toEqual([`hello-modules-${NEW_KERNEL}`]);
    expect(second.plan.metapackages.map((m) => m.kernel)).toEqual([NEW_KERNEL]);
    const packages = await readFile(path.join(repo, 'dists/bookworm/main/binary-amd64/Packages'), 'utf8');
    expect(packages.match(/^Package: hello-modules-6\.1\.0-/gm)).toHaveLength(201);
    expect(ms).toBeLessThan(20_000);
    // the 200 kernels' files and the first metapackage are there, byte for byte; two files more
    const after = await poolSums();
    for (const line of before) expect(after).toContain(line);
    expect(after).toHaveLength(before.length + 2);
  }, 600_000);
});
