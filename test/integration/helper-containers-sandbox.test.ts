import { beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import type { IsolatedRun } from '../../src/executor/runtime.js';
import { imageRef } from '../../src/images/catalog.js';
import { runSigner } from '../../src/signing/signer-container.js';
import { bootKernel } from '../../src/verify/boot-kernel.js';
import { VERIFY_IMAGE } from '../../src/verify/verify-image.js';

/**
 * The two containers kfarm starts besides builds: the signer (sign-file with the key on stdin)
 * and the verify container (QEMU booting a guest that loads the module). Each is started the
 * way kfarm starts it (runSigner, bootKernel: their user, capabilities, mounts and limits), its
 * command swapped for a probe that prints on stderr what a process inside can see and do:
 * docs/security.md cites these for their confinement.
 */
const PROBE = String.raw`exec >&2
echo "PROBE uid $(id -u)"
for s in /proc/[0-9]*/status; do
  awk '/^(Name|Uid|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):/ { printf "%s%s ", $1, $2 } END { print "" }' "$s" 2>/dev/null | sed 's/^/PROBE proc /'
done
awk '{ print "PROBE mount " $2 " " $3 " " $4 }' /proc/mounts
echo "PROBE net $(ls /sys/class/net | tr '\n' ' ')"
`;

const runtime = new DockerRuntime();
/** the runtime kfarm gets, but every container runs the probe instead of its own script */
const probing = Object.create(runtime) as DockerRuntime;
probing.runIsolated = (run: IsolatedRun) => runtime.runIsolated({ ...run, cmd: ['bash', '-c', PROBE] });

const lines = (text: string, prefix: string) =>
  [...new Set(text.split('\n').map((l) => l.trim()))].filter((l) => l.startsWith(`PROBE ${prefix} `)).map((l) => l.slice(`PROBE ${prefix} `.length));

/** what every process in the container may do, and what is mounted from the host */
function expectConfined(text: string, uid: string): void {
  expect(lines(text, 'uid'), text.slice(-2000)).toEqual([uid]);
  const procs = lines(text, 'proc').map((line): Record<string, string | undefined> => Object.fromEntries([...line.matchAll(/(\w+):(\S+)/g)].map((m) => [m[1] ?? '', m[2] ?? ''])));
  expect(procs.length).toBeGreaterThan(0);
  for (const p of procs) {
    expect(p.NoNewPrivs, `${p.Name}`).toBe('1');
    for (const key of ['CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(BigInt(`0x${p[key] ?? 'ff'}`), `${p.Name} ${key}`).toBe(0n);
  }
  const mounts = lines(text, 'mount').map((l) => l.split(' '));
  expect(mounts.find(([point]) => point === '/')?.[2]?.split(','), 'the root mount').toContain('ro');
  const virtual = new Set(['proc', 'sysfs', 'tmpfs', 'devpts', 'mqueue', 'cgroup', 'cgroup2']);
  // the engine's own files, bind-mounted read-only (with --network none it adds no /etc/hosts or resolv.conf)
  const engineFiles = ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/sbin/docker-init', '/usr/sbin/docker-init'];
  for (const [point, type, options] of mounts.filter(([point, type]) => point !== '/' && !virtual.has(type ?? ''))) {
    expect(engineFiles, `mounted from the host: ${point} (${type})`).toContain(point);
    expect(options?.split(','), `${point} is writable`).toContain('ro');
  }
  expect(lines(text, 'net')).toEqual(['lo']);
}

let kernel = '';
beforeAll(async () => {
  const image = await runtime.inspectImage(imageRef('debian-12'));
  if (!image) throw new Error(`${imageRef('debian-12')} is missing: run \`bash scripts/setup.sh\``);
  if (!(await runtime.inspectImage(VERIFY_IMAGE))) throw new Error(`${VERIFY_IMAGE} is missing: run \`kfarm build --verify load\` once (or scripts/setup.sh)`);
  kernel = '6.1.0-0-amd64';
});

describe('the containers kfarm starts besides builds, seen from inside', () => {
  it('the signer runs as nobody with no capability, no network, a read-only root and nothing of the host', async () => {
    const out = await runSigner({ runtime: probing, image: imageRef('debian-12'), kernel, mode: 'probe', stdin: Buffer.alloc(0), workMiB: 16, outputLimitBytes: 1024 * 1024 });
    expectConfined(out.log, '65534');
  }, 120_000);

  it('the verify container runs QEMU as root with no capability, no network, a read-only root and nothing of the host', async () => {
    const result = await bootKernel(probing, VERIFY_IMAGE, {
      kernel,
      arch: 'x86_64',
      accel: 'tcg',
      kernelDeb: Buffer.from('not a kernel package: the probe never reads it'),
      modules: [{ installLocation: '/updates/dkms', fileName: 'probe.ko', data: Buffer.from('not a module') }],
      cmdline: '',
      timeoutSec: 30,
    });
    expectConfined(result.console, '0');
  }, 120_000);
});
