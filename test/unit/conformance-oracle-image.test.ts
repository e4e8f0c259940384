import { describe, expect, it } from 'vitest';
import { oracleDockerfile } from '../../bench/conformance/oracle-image.js';

const image = (kernel: string) => ({ name: 'debian-12', ref: `kfarm/debian-12:${kernel.replace(/\+/g, '_')}`, id: `sha256:${kernel}`, arch: 'x86_64', kernels: [kernel] });

describe("conformance: the oracle image's Dockerfile", () => {
  const a = image('6.1.0-57-amd64');
  const b = image('6.12.117+deb12-amd64');
  const file = oracleDockerfile([a, b], { kbuildDirs: new Map([[b.ref, ['/usr/lib/linux-kbuild-6.12.117+deb12']]]), pahole: true });

  it('starts from the first kernel image and installs dkms without Recommends (and pahole when a kernel needs it)', () => {
    expect(file.split('\n')[0]).toBe(`FROM ${a.ref}`);
    expect(file).toContain('apt-get install -y --no-install-recommends dkms kmod xz-utils dwarves');
    expect(oracleDockerfile([a])).not.toContain('dwarves');
  });

  it("copies the other kernels' headers, modules dir and kbuild", () => {
    expect(file).toContain(`COPY --from=${b.ref} /usr/src/ /usr/src/`);
    expect(file).toContain(`COPY --from=${b.ref} /usr/lib/modules/ /usr/lib/modules/`);
    expect(file).toContain(`COPY --from=${b.ref} /usr/lib/linux-kbuild-6.12.117+deb12/ /usr/lib/linux-kbuild-6.12.117+deb12/`);
    expect(file).not.toContain(`COPY --from=${a.ref}`);
  });

  it("puts each kernel's real modules in place (linux-modules-<k>, else linux-image-<k>), past the images' pin on linux-image-*, and runs depmod", () => {
    for (const k of ['6.1.0-57-amd64', '6.12.117+deb12-amd64']) {
      expect(file).toContain(`download linux-modules-${k}`);
      expect(file).toContain(`download linux-image-${k}`);
      expect(file).toContain(`download linux-image-${k}-unsigned`);
      expect(file).toContain(`depmod ${k}; test -s /lib/modules/${k}/modules.dep`);
    }
    expect(file).toContain('-o Dir::Etc::PreferencesParts=/tmp/k/nopin');
    expect(file).toContain('LABEL io.kfarm.image=""');
  });
});
