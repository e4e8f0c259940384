import path from 'node:path';
import { KfarmError } from '../errors/kfarm-error.js';
import { bmdebPackageName } from '../packaging/bmdeb/layout.js';
import { dkmsDebPackageName } from '../packaging/dkms-deb/layout.js';
import { run } from '../process/run.js';
import { hashFile } from '../report/out-dir-checksums.js';
import { readReport } from '../report/read-report.js';
import type { BuildReport } from '../report/report.js';
import type { AptPackage } from './apt-plan.js';

/**
 * The .debs of out dirs, as the APT plan takes them: only what each `report.json` lists
 * (`--format bmdeb` and `dkms-deb`), each file hashed and compared with the sha256 the report
 * gives before anything reads it further (a file changed since the build is refused: nothing is
 * published), its control fields read by dpkg-deb, and its kernels (release, arch) taken from
 * the report's rows. Reads only.
 */
const DEB_FORMATS = new Set(['bmdeb', 'dkms-deb']);

export async function readAptPackages(outDirs: readonly string[]): Promise<AptPackage[]> {
  const packages: AptPackage[] = [];
  for (const outDir of outDirs) {
    const report = await readReport(outDir);
    for (const listed of report.packages ?? []) {
      if (!DEB_FORMATS.has(listed.format)) continue;
      const file = path.join(outDir, listed.path);
      const actual = await hashFile(file).catch((err: NodeJS.ErrnoException) => {
        throw new KfarmError('PUBLISH_REFUSED', `${file}, listed in ${outDir}/report.json, cannot be read (${err.code ?? err.message})`, { context: { outDir, file } });
      });
      if (actual.sha256 !== listed.sha256 || actual.size !== listed.size) {
        throw new KfarmError(
          'PUBLISH_REFUSED',
          `${file} is not the file ${outDir}/report.json lists (sha256 ${actual.sha256}, the report says ${listed.sha256}): nothing was published`,
          {
            context: { outDir, file },
            hint: 'The package changed after the build: build (or `kfarm pack`) again rather than publish a file kfarm did not make.',
          },
        );
      }
      packages.push(await describeDeb(report, listed.format as 'bmdeb' | 'dkms-deb', file, actual));
    }
  }
  return packages;
}

async function describeDeb(report: BuildReport, kind: 'bmdeb' | 'dkms-deb', file: string, hashed: { sha256: string; size: number }): Promise<AptPackage> {
  const fields = await controlFields(file);
  const rows = report.kernels.filter((k) => k.verdict === 'built').map((k) => ({ row: k, module: k.module ?? report.module, version: k.version ?? report.version }));
  const base = { file, sha256: hashed.sha256, size: hashed.size, package: fields.Package, version: fields.Version, architecture: fields.Architecture, kind };
  if (kind === 'bmdeb') {
    const match = rows.find((r) => bmdebPackageName({ name: r.module }, r.row) === fields.Package);
    if (!match) throw notInReport(file, report);
    return { ...base, module: match.module, moduleVersion: match.version, kernel: match.row.kernel, targets: [{ release: match.row.release, arch: match.row.debianArch }] };
  }
  const mine = rows.filter((r) => dkmsDebPackageName({ name: r.module }) === fields.Package);
  const first = mine[0];
  if (!first) throw notInReport(file, report);
  const targets = [...new Map(mine.map((r) => [`${r.row.release}/${r.row.debianArch}`, { release: r.row.release, arch: r.row.debianArch }])).values()];
  return { ...base, module: first.module, moduleVersion: first.version, targets };
}

function notInReport(file: string, report: BuildReport): KfarmError {
  return new KfarmError('PUBLISH_REFUSED', `${file} belongs to no built kernel of report.json (module ${report.module})`, { context: { file } });
}

async function controlFields(file: string): Promise<{ Package: string; Version: string; Architecture: string }> {
  const out = await run('dpkg-deb', ['--field', file, 'Package', 'Version', 'Architecture'], { timeoutMs: 60_000 });
  const fields: Record<string, string> = {};
  for (const line of out.stdout.split('\n')) {
    const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined) fields[m[1]] = m[2].trim();
  }
  const { Package, Version, Architecture } = fields;
  if (!Package || !Version || !Architecture) throw new KfarmError('PUBLISH_REFUSED', `${file} is not a binary package dpkg-deb can read`, { context: { file } });
  return { Package, Version, Architecture };
}
