import { describe, expect, it } from 'vitest';
import { buildOptions } from '../../src/config/build-options.js';
import { containerMounts } from '../../src/worker/container-mounts.js';

const opt = (mount: string) => Object.fromEntries(mount.split(',').map((o) => o.split('=') as [string, string | undefined]));

describe('containerMounts', () => {
  it('caps every writable path in bytes and in inodes', () => {
    const mounts = containerMounts(buildOptions({}), 4 * 1024 * 1024);
    for (const [path, options] of Object.entries(mounts)) {
      expect(options, path).toMatch(/(^|,)size=\d+m(,|$)/);
      expect(options, path).toMatch(/(^|,)nr_inodes=\d+(,|$)/);
    }
    expect(Object.keys(mounts).sort()).toEqual(['/kfarm', '/kfarm/source', '/run/lock', '/tmp', '/var/lib/dkms', '/var/tmp']);
  });

  it('sizes the build tree and the scratch mounts from --disk', () => {
    const mounts = containerMounts(buildOptions({ diskMiB: 128 }), 0);
    expect(opt(mounts['/var/lib/dkms'] ?? '')).toMatchObject({ size: '128m', nr_inodes: String(128 * 64), uid: '65534' });
    expect(opt(mounts['/tmp'] ?? '')).toMatchObject({ size: '32m', mode: '1777' });
  });

  it("gives the supervisor's /kfarm to root only, sized for the output cap", () => {
    const mounts = containerMounts(buildOptions({ outputLimitBytes: 64 * 1024 * 1024 }), 0);
    const kfarm = opt(mounts['/kfarm'] ?? '');
    expect(kfarm).toMatchObject({ size: '80m', mode: '0755' });
    expect(kfarm.uid).toBeUndefined();
    expect(opt(mounts['/kfarm/source'] ?? '').uid).toBe('65534');
  });
});
