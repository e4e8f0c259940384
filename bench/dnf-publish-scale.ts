/**
 * Benchmark: publishing one new kernel's kmod RPM to a DNF repository that already holds N
 * kernels' packages (issue 22: "the time a publish of one new kernel takes against a repository
 * that already holds 200 kernels' packages, and the repository's size").
 *
 *   npm run build && node lib/bench/dnf-publish-scale.js <out-dir of a hello build with --format kmod-rpm> [--kernels 200]
 *
 * From one real build's out dir: N kmod RPMs made by kfarm's own packer (the build's modules
 * under N kernel names), listed in a report.json and SHA256SUMS of a synthetic out dir, published
 * in one go (the first publish), then one out dir with one more kernel published against it
 * (what every new kernel costs). Real rpmbuild, rpmsign, createrepo_c and gpg; a throw-away key.
 * Prints both times and the repository's size. Not a test.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { writeChecksums } from '../src/packaging/checksums.js';
import { kmodRpmPacker } from '../src/packaging/kmod-rpm/kmod-rpm-packer.js';
import { readPackInputs } from '../src/packaging/pack-input.js';
import { readReport } from '../src/report/read-report.js';
import { writeAtomic } from '../src/util/write-atomic.js';
import { publishDnf } from '../src/publish/dnf-repo.js';
import { repoTestKeys } from '../test/helpers/repo-test-key.js';

const logger = pino({ level: 'silent' });
const args = process.argv.slice(2);
const source = args.find((a) => !a.startsWith('--'));
const n = Number(args[args.indexOf('--kernels') + 1] ?? 200) || 200;
if (!source) throw new Error('usage: dnf-publish-scale <out-dir of a hello build with --format kmod-rpm> [--kernels 200]');

/** An out dir whose report lists kmod RPMs of the source build's modules for these kernel names. */
async function syntheticOutDir(dir: string, kernels: string[]): Promise<void> {
  const report = await readReport(source!);
  const [input] = await readPackInputs(source!);
  const row = report.kernels.find((k) => k.verdict === 'built')!;
  const packages = [];
  for (const kernel of kernels) {
    const [w] = await kmodRpmPacker.pack({ ...input!, kernels: [{ ...input!.kernels[0]!, kernel }] }, { outDir: path.join(dir, 'kmod-rpm'), logger });
    packages.push({ format: 'kmod-rpm', path: `kmod-rpm/${w!.path}`, sha256: w!.sha256, size: w!.size });
  }
  const { tarball: _tarball, ...rest } = row;
  const out = { ...report, modules: undefined, fullTarball: undefined, kernels: kernels.map((kernel) => ({ ...rest, kernel })), packages };
  await writeAtomic(path.join(dir, 'report.json'), Buffer.from(JSON.stringify(out, null, 2)));
  await writeChecksums(dir, out);
}

async function du(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) if (e.isFile()) total += (await stat(path.join(e.parentPath, e.name))).size;
  return total;
}

const work = await mkdtemp(path.join(os.tmpdir(), 'kfarm-bench-dnf-'));
const keys = await repoTestKeys();
try {
  const names = Array.from({ length: n + 1 }, (_, i) => `6.1.0-${1000 + i}-amd64`);
  let t = performance.now();
  await syntheticOutDir(path.join(work, 'many'), names.slice(0, n));
  await syntheticOutDir(path.join(work, 'one'), names.slice(n));
  console.log(`packed ${n + 1} kmod RPMs in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const repo = path.join(work, 'repo');
  t = performance.now();
  await publishDnf({ outDirs: [path.join(work, 'many')], repoDir: repo, key: { keyFile: keys.plain }, logger });
  console.log(`first publish of ${n} kernels: ${((performance.now() - t) / 1000).toFixed(2)} s`);
  const before = await du(repo);
  t = performance.now();
  const r = await publishDnf({ outDirs: [path.join(work, 'one')], repoDir: repo, key: { keyFile: keys.plain }, logger });
  console.log(`publish of 1 new kernel against ${n}: ${((performance.now() - t) / 1000).toFixed(2)} s (added ${r.added.length})`);
  console.log(
    `repository: ${(before / 1e6).toFixed(2)} MB with ${n} kernels, ${((await du(repo)) / 1e6).toFixed(2)} MB with ${n + 1} (${(await readdir(path.join(repo, 'repodata'))).length} files in repodata/)`,
  );
} finally {
  await keys.close();
  await rm(work, { recursive: true, force: true });
}
