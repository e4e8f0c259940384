import { createHash } from 'node:crypto';
import { packTar } from '../../src/executor/archive.js';
import type { DockerRuntime } from '../../src/executor/docker-runtime.js';
import type { KfarmImage } from '../../src/images/catalog.js';

/**
 * The oracle of one release: "each kernel's machine" with the release's own dkms.
 * FROM the first kernel's kfarm image, dkms installed from the release's archive without
 * Recommends (a linux-headers metapackage would come along), the other kernels' headers
 * copied in (/usr/src, /usr/lib/modules), and each kernel's real modules: its linux-image
 * package extracted to /lib/modules/<k>/ and `depmod <k>` run. That is what makes dkms choose
 * the module suffix the way it does on a machine running that kernel (3.0.10 reads
 * modules.dep, 3.2.2 looks for compressed modules below /lib/modules/<k>/; Debian's 6.12 and
 * newer kernels ship .ko.xz). Cached by content: the tag is a hash of the Dockerfile and the
 * kernel images' ids.
 */
export interface ImageFacts {
  /** /usr/lib/linux-kbuild-* of each image (what its /usr/src/linux-kbuild-* link points to) */
  kbuildDirs: ReadonlyMap<string, readonly string[]>;
  /** some kernel's headers came with pahole (Debian's 6.12 headers need it for BTF): the oracle gets it too */
  pahole: boolean;
}

export function oracleDockerfile(images: readonly KfarmImage[], facts: ImageFacts = { kbuildDirs: new Map(), pahole: false }): string {
  const [first, ...others] = images;
  if (!first) throw new Error('an oracle needs at least one kernel image');
  // apt and DNS here fail now and then: every download is tried twice
  const retry = (cmd: string) => `{ ${cmd} || { sleep 5; ${cmd}; }; }`;
  // the kernel images pin linux-image-* away (priority -1); a download with no preferences sees them
  const download = 'apt-get -o Dir::Etc::PreferencesParts=/tmp/k/nopin download';
  const kernelModules = images.map((img) => {
    const k = img.kernels[0] ?? '';
    return [
      `RUN set -eux; ${retry('apt-get update -qq')}; mkdir -p /tmp/k/nopin && cd /tmp/k; \\`,
      // newer kernels (7.x) ship their modules in linux-modules-<k>; older ones in linux-image-<k>
      `    ${retry(`${download} linux-modules-${k}`)} || ${retry(`${download} linux-image-${k}`)} || ${retry(`${download} linux-image-${k}-unsigned`)}; \\`,
      `    for f in ./*.deb; do dpkg-deb -x "$f" x; done; \\`,
      `    for d in x/lib/modules/${k} x/usr/lib/modules/${k}; do if [ -d "$d" ]; then mkdir -p /lib/modules/${k}; cp -a "$d"/. /lib/modules/${k}/; fi; done; \\`,
      `    depmod ${k}; test -s /lib/modules/${k}/modules.dep; \\`,
      `    cd / && rm -rf /tmp/k /var/lib/apt/lists/*`,
    ].join('\n');
  });
  return [
    `FROM ${first.ref}`,
    'USER root',
    `RUN set -eux; ${retry('apt-get update -qq')}; \\`,
    `    ${retry(`DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dkms kmod xz-utils${facts.pahole ? ' dwarves' : ''}`)}; \\`,
    '    apt-get clean; rm -rf /var/lib/apt/lists/*; dpkg-query -W dkms',
    // the headers' /usr/src/linux-kbuild-* link leads to /usr/lib/linux-kbuild-*: it comes along
    ...others.flatMap((img) => [
      `COPY --from=${img.ref} /usr/src/ /usr/src/`,
      `COPY --from=${img.ref} /usr/lib/modules/ /usr/lib/modules/`,
      ...(facts.kbuildDirs.get(img.ref) ?? []).map((d) => `COPY --from=${img.ref} ${d}/ ${d}/`),
    ]),
    ...kernelModules,
    '# Not a build image: keep it out of `kfarm images list`.',
    'LABEL io.kfarm.image=""',
    '',
  ].join('\n');
}

export async function oracleImage(runtime: DockerRuntime, release: string, images: readonly KfarmImage[], onLine: (line: string) => void): Promise<string> {
  const kbuildDirs = new Map<string, string[]>();
  let pahole = false;
  for (const img of images) {
    const { output } = await runtime.runHelper(img.ref, ['bash', '-c', 'ls -d /usr/lib/linux-kbuild-* 2>/dev/null; command -v pahole; true']);
    const lines = output.split('\n').map((l) => l.trim());
    kbuildDirs.set(
      img.ref,
      lines.filter((l) => /^\/usr\/lib\/linux-kbuild-[A-Za-z0-9.+~-]+$/.test(l)),
    );
    pahole ||= lines.some((l) => /\/pahole$/.test(l));
  }
  const dockerfile = oracleDockerfile(images, { kbuildDirs, pahole });
  const tag = createHash('sha256')
    .update(dockerfile)
    .update(images.map((i) => i.id).join(' '))
    .digest('hex')
    .slice(0, 16);
  const ref = `kfarm-conformance/oracle-${release}:${tag}`;
  if (!(await runtime.inspectImage(ref))) {
    await runtime.buildImage({
      context: await packTar([{ path: 'Dockerfile', type: 'file', mode: 0o644, data: Buffer.from(dockerfile) }]),
      tag: ref,
      buildArgs: {},
      labels: {},
      onLine,
    });
  }
  return ref;
}
