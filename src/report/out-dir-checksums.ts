import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { KfarmError } from '../errors/kfarm-error.js';
import type { BuildReport } from './report.js';
import { signingOf } from './signing-report.js';

export const SUMS_FILE = 'SHA256SUMS';
/** the views of the report, written together by the out dir's writer (out-dir.ts) */
export const REPORT_FILES = ['report.json', 'junit.xml', 'report.html'] as const;

export interface Deliverable {
  /** relative to the out dir */
  path: string;
  /** what the report says its bytes are (the report files themselves have none) */
  sha256?: string;
}

/**
 * Pure: what SHA256SUMS vouches for, sorted: every artifact the report lists (each kernel's
 * binaries-only tarball, each module's full tarball, the packages of --format / `kfarm pack`,
 * the signing certificate and ENROLL.md of signed modules: signing-report.ts) and the report's
 * own files. Never the logs (diagnostics, not deliverables), never a file the report does not
 * name: an out dir also holds what earlier builds left (tarballs of kernels this build did not
 * select, an earlier signed build's enrolment files) and whatever else someone put there, and
 * kfarm vouches for neither.
 */
export function deliverablesOf(report: BuildReport): Deliverable[] {
  const byPath = new Map<string, Deliverable>();
  const add = (d: Deliverable) => byPath.set(d.path, d);
  for (const k of report.kernels) if (k.tarball) add({ path: k.tarball.path, sha256: k.tarball.sha256 });
  if (report.fullTarball) add({ path: report.fullTarball.path, sha256: report.fullTarball.sha256 });
  for (const m of report.modules ?? []) if (m.fullTarball) add({ path: m.fullTarball.path, sha256: m.fullTarball.sha256 });
  for (const p of report.packages ?? []) add({ path: p.path, sha256: p.sha256 });
  // what a fleet enrols to trust signed modules (signing-cert.der, ENROLL.md): shipped with them, so vouched for
  for (const f of signingOf(report)?.files ?? []) add({ path: f.path, sha256: f.sha256 });
  for (const f of REPORT_FILES) add({ path: f });
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * SHA256SUMS's text for this report, in `sha256sum -c` format. Each file is hashed where
 * `locate` says it is (the out dir's staged view: the staged copy, else the committed one),
 * streamed (a package can be larger than one read: Node refuses files over 2 GiB), and must be
 * what the report says it is: a deliverable that changed or vanished is refused, never vouched for.
 */
export async function checksumsText(outDir: string, report: BuildReport, locate: (rel: string) => string): Promise<string> {
  const lines: string[] = [];
  for (const d of deliverablesOf(report)) {
    const file = locate(d.path);
    // junit.xml and report.html are written with report.json; an out dir of an older kfarm may lack them
    if (
      d.sha256 === undefined &&
      d.path !== 'report.json' &&
      !(await access(file).then(
        () => true,
        () => false,
      ))
    )
      continue;
    const { sha256 } = await hashFile(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      throw changed(outDir, `${d.path}, which report.json lists, is missing`);
    });
    if (d.sha256 !== undefined && sha256 !== d.sha256) throw changed(outDir, `${d.path} does not match the sha256 report.json gives`);
    lines.push(`${sha256}  ${d.path}\n`);
  }
  return lines.join('');
}

/** sha256 and size of a file of any size, read in 1 MiB chunks. */
export async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

function changed(outDir: string, message: string): KfarmError {
  return new KfarmError('BAD_OPTION', `${outDir}: ${message}`, {
    context: { outDir },
    hint: 'The out dir changed since kfarm wrote it: build again with `kfarm build` (finished kernels come from the cache).',
  });
}
