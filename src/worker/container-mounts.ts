import type { BuildOptions } from '../config/build-options.js';

/** uid/gid of nobody in Debian-based images: what the module's build runs as. */
export const BUILD_USER = 65534;

const MiB = 1024 * 1024;
/** inodes per MiB of a scratch mount: room for a kernel module's many small objects, not a million empty files */
export const INODES_PER_MIB = 64;

/**
 * Every writable path of a build container (its root filesystem is read-only), each a tmpfs
 * capped in bytes and in inodes. Sizes follow --disk: the build tree gets all of it, /tmp and
 * /var/tmp a quarter each. (/usr/src stays read-only: it holds the kernel headers; the
 * driver links the dkms tree's source straight to /kfarm/source.) tmpfs lives in memory,
 * so what a build writes there counts against --memory too.
 */
export function containerMounts(options: Pick<BuildOptions, 'diskMiB' | 'outputLimitBytes'>, sourceBytes: number): Record<string, string> {
  const disk = options.diskMiB;
  const scratch = Math.max(16, Math.floor(disk / 4));
  const nobody = `uid=${BUILD_USER},gid=${BUILD_USER}`;
  // unpacked, the source takes its tar's bytes at most, and a tar needs 512 bytes per entry
  const sourceMiB = Math.ceil(sourceBytes / MiB) + 16;
  const sourceInodes = Math.ceil(sourceBytes / 512) + 1024;
  return {
    // the supervisor's: its copy of the driver, the steps' facts, the output; nobody cannot write here
    '/kfarm': `rw,noexec,nosuid,nodev,size=${Math.ceil(options.outputLimitBytes / MiB) + 16}m,nr_inodes=1024,mode=0755`,
    '/kfarm/source': `rw,exec,nosuid,nodev,size=${sourceMiB}m,nr_inodes=${sourceInodes},${nobody},mode=0755`,
    '/var/lib/dkms': `rw,exec,nosuid,nodev,size=${disk}m,nr_inodes=${disk * INODES_PER_MIB},${nobody},mode=0755`,
    '/tmp': `rw,exec,nosuid,nodev,size=${scratch}m,nr_inodes=${scratch * INODES_PER_MIB},mode=1777`,
    '/var/tmp': `rw,exec,nosuid,nodev,size=${scratch}m,nr_inodes=${scratch * INODES_PER_MIB},mode=1777`,
    '/run/lock': 'rw,noexec,nosuid,nodev,size=1m,nr_inodes=64,mode=1777',
  };
}
