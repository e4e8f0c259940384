import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { KfarmError } from '../errors/kfarm-error.js';
import { hashFile, SUMS_FILE } from '../packaging/checksums.js';
import { readReport } from '../report/read-report.js';
import { insideDir } from '../util/inside-dir.js';
import { dnfPackagesOf } from './dnf-candidates.js';
import { nevraOf } from './dnf-manifest.js';
import type { DnfCandidate } from './dnf-plan.js';
import { readRpmIdentity } from './dnf-rpm.js';

/**
 * The kmod and dkms RPMs of earlier builds' out dirs, each checked before anything is published:
 * report.json read through its schema, each package's bytes against the sha256 that report.json
 * and SHA256SUMS give, and its header against the name kfarm's packer gave it. One bad package
 * refuses the whole publish, before the repository is touched.
 */
export async function readDnfCandidates(outDirs: readonly string[]): Promise<DnfCandidate[]> {
  const candidates: DnfCandidate[] = [];
  for (const outDir of outDirs) {
    const report = await readReport(outDir);
    const listed = dnfPackagesOf(report, outDir);
    if (listed.length === 0) continue;
    const sums = parseSums(await readFile(path.join(outDir, SUMS_FILE), 'utf8').catch(() => ''));
    for (const p of listed) {
      const file = insideDir(outDir, ...p.path.split('/'));
      const bad = (why: string) =>
        new KfarmError('PUBLISH_REFUSED', `${outDir}: ${p.path} ${why}; nothing was published`, {
          context: { outDir, package: p.path },
          hint: 'The out dir changed since kfarm wrote it: pack it again (`kfarm pack <out-dir> --format kmod-rpm,dkms-rpm`) or build again.',
        });
      if (sums.get(p.path) !== p.sha256) throw bad(sums.has(p.path) ? `does not match the sha256 ${SUMS_FILE} gives` : `is not in ${SUMS_FILE}`);
      const { sha256, size } = await hashFile(file).catch((err: NodeJS.ErrnoException) => {
        throw bad(err.code === 'ENOENT' ? 'is missing' : `cannot be read (${err.code ?? err.message})`);
      });
      if (sha256 !== p.sha256 || size !== p.size) throw bad('does not match the sha256 report.json gives');
      const id = await readRpmIdentity(file);
      if (nevraOf(id) !== nevraOf(p.expected)) throw bad(`is ${nevraOf(id)} inside, not ${nevraOf(p.expected)}`);
      candidates.push({ ...id, source: file, module: p.module, moduleVersion: p.moduleVersion, kind: p.kind, ...(p.kernel ? { kernel: p.kernel } : {}), sha256, size });
    }
  }
  if (candidates.length === 0) {
    throw new KfarmError('BAD_OPTION', `${outDirs.join(', ')}: no kmod-rpm or dkms-rpm package to publish`, {
      hint: 'Build with `--format kmod-rpm,dkms-rpm`, or pack an earlier build: `kfarm pack <out-dir> --format kmod-rpm,dkms-rpm`.',
    });
  }
  return candidates;
}

/** Pure: `sha256sum` lines → path → sha256. */
export function parseSums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (m) sums.set(m[2]!, m[1]!);
  }
  return sums;
}
