import { binariesOnlyLayout, perKernelTarballName } from '../dkms-tarball/layout.js';
import type { TarEntry } from '../../executor/archive.js';
import type { PackInput, PackKernel } from '../packer.js';
import { checkNames, type RpmPlan } from '../kmod-rpm/kmod-spec.js';
import { STAGE_MACRO } from '../kmod-rpm/rpmbuild.js';
import { rpmNamePart, rpmVersion } from '../kmod-rpm/rpm-names.js';

/**
 * The DKMS binaries as one noarch RPM per module version: `dkms mkrpm`'s package (dkms
 * reference §4.1) with its two known failures designed out. It carries one binaries-only
 * tarball per kernel, not one for all: dkms 3.x `ldtarball` loads only the first kernel of a
 * multi-kernel tarball (§2.6). It carries /usr/src/<name>-<version>/dkms.conf, without which
 * `ldtarball` of a binaries-only tarball exits 1 although it loaded (#362) and dkms >= 3.0.13
 * does not list the module. %post is kfarm's own loop rather than common.postinst, which
 * treats that exit 1 as fatal (§4.2): each tarball is loaded with `ldtarball --force` (the
 * first exits 0, later ones exit 3 "DKMS tree already contains" after loading, measured on
 * dkms 2.8.4/3.0.10/3.2.2; an exit 1 counts as loaded only when the kernel's modules are in
 * the DKMS tree, #362's case), then `dkms install` runs for each kernel present on the
 * machine: its headers (`build`) or its modules (`kernel`) are there, since prebuilt modules
 * install without headers.
 * No scriptlet fails the transaction: a missing kernel or dkms is reported and skipped.
 * Pure: spec text and files.
 */
export const DKMS_RPM_RELEASE = '1';

/** dkms's default tree (framework.conf `dkms_tree`), where ldtarball puts a kernel's modules. */
export const DKMS_TREE = '/var/lib/dkms';

export function dkmsRpmPackageName(name: string): string {
  return `${rpmNamePart(name)}-dkms-bin`;
}

export function dkmsRpmFileName(input: Pick<PackInput, 'name' | 'version'>): string {
  return `${dkmsRpmPackageName(input.name)}-${rpmVersion(input.version)}-${DKMS_RPM_RELEASE}.noarch.rpm`;
}

/** Where the per-kernel tarballs go: the package's own /usr/share dir. */
export function tarballDir(name: string): string {
  return `/usr/share/${dkmsRpmPackageName(name)}`;
}

/** The binaries-only tarball of one kernel (`dkms mktarball --binaries-only -k <kernel>`), timestamps at the epoch. */
export function kernelTarballEntries(input: PackInput, kernel: PackKernel): TarEntry[] {
  const mtime = new Date(input.sourceDateEpoch * 1000);
  return binariesOnlyLayout(
    { name: input.name, version: input.version, dkmsConf: input.dkmsConf },
    {
      kernel: kernel.kernel,
      arch: kernel.arch,
      modules: kernel.modules.map((m) => ({ fileName: m.fileName, data: m.data })),
      makeLog: kernel.makeLog,
      kernelConfig: kernel.kernelConfig,
    },
  ).map((e) => ({ ...e, mtime }));
}

export const tarballKey = (k: Pick<PackKernel, 'kernel' | 'arch'>): string => `${k.kernel}/${k.arch}`;

/** `tarballs`: the gzipped kernelTarballEntries of every kernel, by tarballKey. */
export function dkmsRpmPlan(input: PackInput, tarballs: ReadonlyMap<string, Buffer>): RpmPlan {
  checkNames(input);
  for (const k of input.kernels) checkNames(input, k);
  const pkg = dkmsRpmPackageName(input.name);
  const dir = tarballDir(input.name);
  const srcDir = `/usr/src/${input.name}-${input.version}`;
  const kernels = [...input.kernels].sort((a, b) => (tarballKey(a) < tarballKey(b) ? -1 : tarballKey(a) > tarballKey(b) ? 1 : 0));
  const packed = kernels.map((k) => {
    const data = tarballs.get(tarballKey(k));
    if (!data) throw new Error(`no tarball for ${tarballKey(k)}`);
    return { kernel: k.kernel, arch: k.arch, path: `${dir}/${perKernelTarballName(input, k.kernel, k.arch)}`, data };
  });
  const q = (s: string) => `'${s}'`;
  const post = [
    "# Load every kernel of this machine's arch into the DKMS tree, one tarball per call, and",
    '# install it where the kernel is present. Never fails the transaction.',
    'if ! command -v dkms >/dev/null 2>&1; then',
    `  echo ${q(`${pkg}: dkms is not installed, the prebuilt modules were not loaded`)} >&2`,
    '  exit 0',
    'fi',
    'kfarm_machine=$(uname -m)',
    '# kfarm_load <tarball> <kernel> <arch>',
    'kfarm_load() {',
    '  kfarm_out=$(dkms ldtarball --force "$1" 2>&1)',
    '  kfarm_rc=$?',
    '  # 0 on the first load; 3 ("DKMS tree already contains") on later ones, after loading',
    '  if [ "$kfarm_rc" -eq 0 ] || [ "$kfarm_rc" -eq 3 ]; then return 0; fi',
    "  # 1 after loading where dkms#362 strikes: loaded when the kernel's modules are in the tree",
    `  if [ "$kfarm_rc" -eq 1 ] && [ -d ${q(`${DKMS_TREE}/${input.name}/${input.version}`)}"/$2/$3/module" ]; then return 0; fi`,
    `  echo "${pkg}: dkms ldtarball $1 exited with status $kfarm_rc:" >&2`,
    '  echo "$kfarm_out" >&2',
    '  return 1',
    '}',
    'kfarm_install() {',
    '  if [ -d "/lib/modules/$1/build" ] || [ -d "/lib/modules/$1/kernel" ]; then',
    `    dkms install -m ${q(input.name)} -v ${q(input.version)} -k "$1" || echo "${pkg}: dkms install for $1 failed" >&2`,
    '  fi',
    '}',
    ...packed.map((t) => `if [ "$kfarm_machine" = ${q(t.arch)} ]; then kfarm_load ${q(t.path)} ${q(t.kernel)} ${q(t.arch)} && kfarm_install ${q(t.kernel)}; fi`),
    'exit 0',
  ];
  const remove = `dkms remove -m ${q(input.name)} -v ${q(input.version)} --all >/dev/null 2>&1 || :`;
  const spec = [
    '# Generated by kfarm: prebuilt DKMS modules (binaries-only tarballs) as an RPM.',
    `Name: ${pkg}`,
    `Version: ${rpmVersion(input.version)}`,
    `Release: ${DKMS_RPM_RELEASE}`,
    `Summary: ${input.name} ${input.version} prebuilt DKMS modules`,
    'License: Unknown',
    'BuildArch: noarch',
    'AutoReqProv: no',
    'Requires: dkms',
    '',
    '%description',
    `The ${input.name} ${input.version} kernel module(s) built by kfarm for ${kernels.length} kernel(s), loaded into DKMS on install: ${kernels.map((k) => `${k.kernel} (${k.arch})`).join(', ')}.`,
    '',
    '%prep',
    '%build',
    '%install',
    `cp -pR '%{${STAGE_MACRO}}/.' '%{buildroot}/'`,
    '',
    '%post',
    ...post,
    '',
    '%preun',
    "# erase: the module leaves dkms (an upgrade is handled in %postun, once this version's files are gone)",
    `if [ "$1" -eq 0 ] && command -v dkms >/dev/null 2>&1; then ${remove}; fi`,
    'exit 0',
    '',
    '%postun',
    "# upgrade to another version: this one's dkms.conf is gone, so its modules leave dkms too",
    `if [ "$1" -ge 1 ] && [ ! -e ${q(`${srcDir}/dkms.conf`)} ] && command -v dkms >/dev/null 2>&1; then ${remove}; fi`,
    'exit 0',
    '',
    '%files',
    '%defattr(644,root,root,755)',
    `${dir}/`,
    `${srcDir}/`,
    '',
  ].join('\n');
  return {
    spec,
    files: [...packed.map((t) => ({ path: t.path, data: t.data, mode: 0o644 })), { path: `${srcDir}/dkms.conf`, data: input.dkmsConf, mode: 0o644 }],
    target: undefined,
  };
}
