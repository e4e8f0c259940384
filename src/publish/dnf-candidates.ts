import { KfarmError } from '../errors/kfarm-error.js';
import { DKMS_RPM_RELEASE, dkmsRpmFileName, dkmsRpmPackageName } from '../packaging/dkms-rpm/dkms-rpm-spec.js';
import { KMOD_RELEASE, kmodPackageName, kmodRpmFileName, rpmArch } from '../packaging/kmod-rpm/kmod-spec.js';
import { rpmVersion } from '../packaging/kmod-rpm/rpm-names.js';
import type { BuildReport } from '../report/report.js';
import type { DnfPackageKind, RpmIdentity } from './dnf-manifest.js';

/** The formats whose packages go to a DNF repository. */
export const DNF_FORMATS = ['kmod-rpm', 'dkms-rpm'] as const;

/** One RPM an out dir's report lists, and what kfarm's packers named it for (module, kernel). */
export interface DnfReportPackage {
  /** relative to the out dir, as report.json gives it */
  path: string;
  sha256: string;
  size: number;
  module: string;
  moduleVersion: string;
  kind: DnfPackageKind;
  kernel?: string;
  /** what its header must say: the apply step reads the header and refuses a package that differs */
  expected: RpmIdentity;
}

/**
 * Pure: the kmod and dkms RPMs report.json lists, each tied to its module (and kernel) by the
 * packers' own file names (a build of several modules lists them all in one `packages`). A
 * listed RPM that no built kernel or module of the report accounts for is refused: the report
 * and its packages disagree, and nothing of that out dir is published.
 */
export function dnfPackagesOf(report: BuildReport, outDir: string): DnfReportPackage[] {
  const modules = report.modules ?? [{ name: report.module, version: report.version }];
  const known = new Map<string, Omit<DnfReportPackage, 'path' | 'sha256' | 'size'>>();
  for (const m of modules) {
    const version = rpmVersion(m.version);
    known.set(`dkms-rpm/${dkmsRpmFileName(m)}`, {
      module: m.name,
      moduleVersion: m.version,
      kind: 'dkms',
      expected: { name: dkmsRpmPackageName(m.name), version, release: DKMS_RPM_RELEASE, arch: 'noarch' },
    });
    for (const row of report.kernels) {
      if ((row.module ?? report.module) !== m.name || (row.version ?? report.version) !== m.version || row.verdict !== 'built') continue;
      known.set(`kmod-rpm/${kmodRpmFileName(m, row)}`, {
        module: m.name,
        moduleVersion: m.version,
        kind: 'kmod',
        kernel: row.kernel,
        expected: { name: kmodPackageName(m.name, row.kernel), version, release: KMOD_RELEASE, arch: rpmArch(row.arch) },
      });
    }
  }
  const out: DnfReportPackage[] = [];
  for (const p of report.packages ?? []) {
    if (!(DNF_FORMATS as readonly string[]).includes(p.format)) continue;
    const what = known.get(p.path);
    if (!what) {
      throw new KfarmError('PUBLISH_REFUSED', `${outDir}: report.json lists ${p.path} (${p.format}), which no module or built kernel of the report accounts for`, {
        context: { outDir, package: p.path },
        hint: 'The out dir was changed by hand: pack it again with `kfarm pack <out-dir> --format kmod-rpm,dkms-rpm`.',
      });
    }
    out.push({ path: p.path, sha256: p.sha256, size: p.size, ...what });
  }
  return out;
}
