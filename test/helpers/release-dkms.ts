import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { RELEASES } from '../../src/archive/releases.js';
import { packTar } from '../../src/executor/archive.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { packageRoot } from '../../src/paths.js';

/**
 * The checker of "a kernel's tarball ingests where that kernel runs": each Debian release's own
 * dkms (bullseye 2.8.4, bookworm 3.0.10, trixie 3.2.2) in a container of that release, one
 * container per release for all its tarballs. No kernel headers are copied in: `ldtarball` and
 * `status` read only /var/lib/dkms and /usr/src (checked on all three), and the arch comes from
 * the tarball's dkms_main_tree/<kernel>/<arch>, so aarch64 tarballs load in the amd64 container.
 *
 * The procedure is the same on every release, and is what a package shipping the tarballs does:
 * - /usr/src/<m>-<v>/dkms.conf is put in place first (taken from the tarball). Without it,
 *   `ldtarball` of a binaries-only tarball exits 1 although it loaded (dkms #362), and dkms
 *   ≥ 3.0.13 (trixie's 3.2.2) does not list such a module in `dkms status` at all.
 * - each tarball is loaded with `ldtarball --force`, one tarball (one kernel) per call: once the
 *   module is added, a plain `ldtarball` refuses the next tarball ("already added", exit 8);
 *   with --force the first load exits 0 and the later ones exit 3 ("DKMS tree already contains")
 *   after loading their kernel.
 * The verdict is `dkms status`: `<m>/<v>, <kernel>, <arch>: built` (3.x) or
 * `<m>, <v>, <kernel>, <arch>: built` (2.x). Cached by content (Dockerfile + base image id).
 */
export type CheckerRelease = 'debian-11' | 'debian-12' | 'debian-13';

export interface ReleaseTarball {
  name: string;
  data: Buffer;
  kernel: string;
  arch: 'x86_64' | 'aarch64';
}

export interface KernelIngest {
  kernel: string;
  arch: string;
  /** `dkms status` lists <module>/<version> for this kernel and arch as built */
  listed: boolean;
  /** exit code of `dkms ldtarball --force` on this kernel's tarball */
  ldtarballExit: number;
}

export interface ReleaseIngest {
  release: CheckerRelease;
  /** the installed dkms package's Debian version, e.g. 3.0.10-8+deb12u1 */
  dkmsVersion: string;
  image: string;
  kernels: KernelIngest[];
  status: DkmsStatusLine[];
  /** the container's whole output (ldtarball's messages, status), for failure messages */
  output: string;
}

export interface DkmsStatusLine {
  module: string;
  version: string;
  kernel: string;
  arch: string;
  /** the first word after the colon: built, installed, added, broken... */
  state: string;
}

const runtime = new DockerRuntime();

/** Pure: the module lines of `dkms status` in the 3.x (`m/v, k, a: s`) and 2.x (`m, v, k, a: s`) formats. */
export function parseDkmsStatus(text: string): DkmsStatusLine[] {
  const lines: DkmsStatusLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const v3 = /^([^\s,/]+)\/([^\s,]+), ([^\s,]+), ([^\s,:]+): (\S+)/.exec(line);
    const v2 = /^([^\s,/]+), ([^\s,]+), ([^\s,]+), ([^\s,:]+): (\S+)/.exec(line);
    const m = v3 ?? v2;
    if (m) lines.push({ module: m[1] ?? '', version: m[2] ?? '', kernel: m[3] ?? '', arch: m[4] ?? '', state: m[5] ?? '' });
  }
  return lines;
}

function codenameOf(release: CheckerRelease): string {
  const spec = RELEASES.find((r) => r.name === release);
  if (!spec) throw new Error(`no release ${release} in src/archive/releases.ts`);
  return spec.codename;
}

/** The release's toolchain image (gcc, the release's apt sources) or else its bootstrapped root. */
async function baseImageOf(release: CheckerRelease): Promise<{ ref: string; id: string }> {
  for (const ref of [`kfarm/${release}-toolchain:latest`, `kfarm/base:${codenameOf(release)}`]) {
    const info = await runtime.inspectImage(ref);
    if (info) return { ref, id: info.id };
  }
  throw new Error(
    `neither kfarm/${release}-toolchain:latest nor kfarm/base:${codenameOf(release)} is here: sync a ${release} kernel first (kfarm images sync ${release} --kernels <k>)`,
  );
}

const building = new Map<CheckerRelease, Promise<string>>();

export function releaseDkmsImage(release: CheckerRelease): Promise<string> {
  let image = building.get(release);
  if (!image) {
    image = buildCheckerImage(release);
    building.set(release, image);
  }
  return image;
}

async function buildCheckerImage(release: CheckerRelease): Promise<string> {
  const dockerfile = await readFile(path.join(packageRoot, 'test', 'fixtures', 'release-dkms', 'Dockerfile'));
  const base = await baseImageOf(release);
  const tag = createHash('sha256').update(dockerfile).update(base.id).digest('hex').slice(0, 16);
  const ref = `kfarm-test/release-dkms-${release}:${tag}`;
  if (!(await runtime.inspectImage(ref))) {
    const lines: string[] = [];
    await runtime.buildImage({
      context: await packTar([{ path: 'Dockerfile', type: 'file', mode: 0o644, data: dockerfile }]),
      tag: ref,
      buildArgs: { BASE_IMAGE: base.ref },
      labels: {},
      onLine: (l) => lines.push(l),
    });
  }
  return ref;
}

// $1 module, $2 version, $3 number of tarballs (/in/0.tar.gz ...). Markers start with @@.
// stderr joins stdout (one pipe keeps the order) and every marker starts a line of its own:
// dkms's messages may end without a newline, and a marker glued to one is not found (a CI run
// read ldtarball exit -1 for a tarball dkms had loaded).
const SCRIPT = `
set -u
exec 2>&1
m=$1 v=$2 n=$3
echo "@@dkms $(dpkg-query -W -f='\${Version}' dkms)"
mkdir -p "/usr/src/$m-$v"
tar -xzf /in/0.tar.gz -O --wildcards '*dkms_binaries_only/dkms.conf' > "/usr/src/$m-$v/dkms.conf" || echo "@@no-dkms.conf in /in/0.tar.gz"
# A machine running a kernel whose modules are compressed (6.12 and later: .ko.xz) has them in
# /lib/modules/<k>/, and dkms reads the suffix from there (3.0: modules.dep, 3.2: the files);
# this container holds no kernel, so each such kernel gets the one module line and file dkms reads.
for ((i = 0; i < n; i++)); do
  tar -tzf "/in/$i.tar.gz" | grep -F '.ko.xz' | sed 's|^[.]/||' | cut -d/ -f2 | sort -u | while read -r k; do
    mkdir -p "/lib/modules/$k/kernel/fs" && : > "/lib/modules/$k/kernel/fs/dummy.ko.xz"
    echo 'kernel/fs/dummy.ko.xz:' >> "/lib/modules/$k/modules.dep"
  done
done
for ((i = 0; i < n; i++)); do
  dkms ldtarball --force "/in/$i.tar.gz"
  printf '\\n@@ldtarball %s %s\\n' "$i" "$?"
done
printf '\\n@@status\\n'
dkms status
printf '\\n@@status-exit %s\\n' "$?"
`;

/**
 * Loads every tarball into one container of the release's dkms, then reads `dkms status`.
 * Tarballs must hold one kernel each (the per-kernel tarballs kfarm writes).
 */
export async function ingestPerRelease(release: CheckerRelease, tarballs: readonly ReleaseTarball[], module: string, version: string): Promise<ReleaseIngest> {
  if (tarballs.length === 0) throw new Error(`no tarballs for ${release}`);
  const image = await releaseDkmsImage(release);
  const input = await packTar([
    { path: 'in', type: 'directory', mode: 0o755 },
    ...tarballs.map((t, i) => ({ path: `in/${i}.tar.gz`, type: 'file' as const, mode: 0o644, data: t.data })),
  ]);
  const { exitCode, output } = await runtime.runHelper(image, ['bash', '-c', SCRIPT, 'release-dkms', module, version, String(tarballs.length)], input);
  const dkmsVersion = /^@@dkms (\S+)$/m.exec(output)?.[1];
  const statusAt = output.indexOf('\n@@status\n');
  if (exitCode !== 0 || !dkmsVersion || statusAt < 0 || !/^@@status-exit 0$/m.test(output)) {
    throw new Error(`the ${release} dkms checker did not run to the end (exit ${exitCode}):\n${output.slice(-4000)}`);
  }
  const exits = new Map<number, number>();
  for (const m of output.matchAll(/^@@ldtarball (\d+) (\d+)$/gm)) exits.set(Number(m[1]), Number(m[2]));
  const status = parseDkmsStatus(output.slice(statusAt));
  const kernels = tarballs.map((t, i) => ({
    kernel: t.kernel,
    arch: t.arch,
    listed: status.some((s) => s.module === module && s.version === version && s.kernel === t.kernel && s.arch === t.arch && s.state === 'built'),
    ldtarballExit: exits.get(i) ?? -1,
  }));
  return { release, dkmsVersion, image, kernels, status, output };
}
