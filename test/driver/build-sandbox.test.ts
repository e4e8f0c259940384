import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ContainerBuildOutput } from '../../src/worker/run-in-container.js';
import { releaseKernel, runDriver } from '../helpers/run-driver.js';

/**
 * The build container as a hostile module sees it: a module whose dkms.conf leaves a process
 * running and whose MAKE is a probe that prints what it can see and do, then fails (its output
 * lands in the log). Built by driver.sh in the container a worker starts (runDriver), so the
 * probe sees exactly what a module's build sees: docs/security.md cites these tests for the
 * container's confinement.
 */
const MEMORY_MIB = 1024;
const PIDS = 300;
/** capability bits of CAP_SETGID (6) and CAP_SETUID (7): all the supervisor keeps */
const SUPERVISOR_CAPS = (1n << 6n) | (1n << 7n);

const PROBE = String.raw`#!/bin/bash
echo "PROBE uid $(id -u) $(id -g)"
for s in /proc/[0-9]*/status; do
  awk '/^(Name|Uid|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):/ { printf "%s%s ", $1, $2 } END { print "" }' "$s" 2>/dev/null | sed 's/^/PROBE proc /'
done
awk '{ print "PROBE mount " $2 " " $3 " " $4 }' /proc/mounts
touch /kfarm/probe 2>/dev/null && echo "PROBE wrote /kfarm" || echo "PROBE cannot write /kfarm"
touch /etc/probe 2>/dev/null && echo "PROBE wrote /etc" || echo "PROBE cannot write /etc"
echo "PROBE net $(ls /sys/class/net | tr '\n' ' ')"
# cgroup v2, else v1
echo "PROBE memory.max $(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1)"
echo "PROBE pids.max $(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max 2>&1)"
left=$(cat /tmp/left.pid 2>/dev/null)
if [[ -n $left && -d /proc/$left ]]; then echo "PROBE left alive $left"; else echo "PROBE left gone $left"; fi
exit 1
`;

/** dkms.conf is sourced in the add step (and again later): the first time, it leaves a sleeper */
const SANDBOX_CONF = `PACKAGE_NAME="sandbox"
PACKAGE_VERSION="1.0"
BUILT_MODULE_NAME[0]="sandbox"
DEST_MODULE_LOCATION[0]="/extra"
MAKE[0]="./probe.sh"
if [[ ! -e /tmp/left.pid ]]; then
  setsid sleep 600 </dev/null >/dev/null 2>&1 3>&- &
  echo $! >/tmp/left.pid
fi
`;

const BIG_CONF = `PACKAGE_NAME="bigmod"
PACKAGE_VERSION="1.0"
BUILT_MODULE_NAME[0]="bigmod"
DEST_MODULE_LOCATION[0]="/extra"
`;
/** a real module of about 6 MiB: the blob is kept (__used) and read at init */
const BIG_C = `#include <linux/module.h>
#include <linux/init.h>
static const char blob[6 << 20] __used = { 1 };
static int __init bigmod_init(void) { return blob[0] == 1 ? 0 : -EINVAL; }
module_init(bigmod_init);
MODULE_LICENSE("GPL");
`;

async function source(files: Record<string, string>, executable: string[] = []): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-sandbox-'));
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  for (const name of executable) await chmod(path.join(dir, name), 0o755);
  return dir;
}

const T = 300_000;
let sandbox: ContainerBuildOutput;
let big: ContainerBuildOutput;
let probes: string[] = [];
const why = (out: ContainerBuildOutput) => `${out.verdict} ${out.reason ?? ''}: ${out.message ?? ''}\n${out.log.toString('utf8').slice(-3000)}`;
const probe = (prefix: string) => probes.filter((l) => l.startsWith(`${prefix} `)).map((l) => l.slice(prefix.length + 1));

beforeAll(async () => {
  const kernel = await releaseKernel('debian-12');
  const [probed, large] = await Promise.all([
    runDriver({ source: await source({ 'dkms.conf': SANDBOX_CONF, 'probe.sh': PROBE }, ['probe.sh']), kernel, options: { memoryMiB: MEMORY_MIB, pids: PIDS } }),
    runDriver({ source: await source({ 'dkms.conf': BIG_CONF, 'bigmod.c': BIG_C, Makefile: 'obj-m := bigmod.o\n' }), kernel, options: { outputLimitBytes: 2 * 1024 * 1024 } }),
  ]);
  sandbox = probed;
  big = large;
  const text = `${sandbox.log.toString('utf8')}\n${sandbox.makeLog?.toString('utf8') ?? ''}`;
  probes = [...new Set(text.split('\n').filter((l) => l.startsWith('PROBE ')))].map((l) => l.slice('PROBE '.length).trim());
  expect(sandbox.verdict, why(sandbox)).toBe('failed');
  expect(probes.length, why(sandbox)).toBeGreaterThan(5);
}, 1_500_000);

describe('the build container, seen from inside a module’s build', () => {
  it(
    'a build step runs as nobody (65534) with no capability and no-new-privs; root in the container holds only SETUID and SETGID',
    () => {
      expect(probe('uid')).toEqual(['65534 65534']);
      const procs: Array<Record<string, string | undefined>> = probe('proc').map((line) =>
        Object.fromEntries([...line.matchAll(/(\w+):(\S+)/g)].map((m) => [m[1] ?? '', m[2] ?? ''])),
      );
      const caps = (p: Record<string, string | undefined>, key: string) => BigInt(`0x${p[key] ?? 'ffffffffffffffff'}`);
      const nobody = procs.filter((p) => p.Uid === '65534');
      const root = procs.filter((p) => p.Uid === '0');
      expect(nobody.length).toBeGreaterThan(0);
      expect(root.length).toBeGreaterThan(0);
      for (const p of nobody) {
        expect(p, 'a step').toMatchObject({ NoNewPrivs: '1' });
        for (const key of ['CapPrm', 'CapEff', 'CapAmb']) expect(caps(p, key), `${p.Name} ${key}`).toBe(0n);
      }
      for (const p of procs) {
        expect(p.NoNewPrivs, `${p.Name}`).toBe('1');
        // the bounding set of every process in the container: the supervisor's two, nothing more
        expect(caps(p, 'CapBnd') & ~SUPERVISOR_CAPS, `${p.Name} CapBnd`).toBe(0n);
        expect(caps(p, 'CapEff') & ~SUPERVISOR_CAPS, `${p.Name} CapEff`).toBe(0n);
      }
    },
    T,
  );

  it(
    "the root file system is read-only, the supervisor's /kfarm is not writable by the build, and nothing of the host is mounted but the engine's own files (its init, /etc/hostname), read-only",
    () => {
      const mounts = probe('mount').map((l) => {
        const [point, type, options] = l.split(' ');
        return { point: point ?? '', type: type ?? '', options: (options ?? '').split(',') };
      });
      const root = mounts.find((m) => m.point === '/');
      expect(root?.options, 'the root mount').toContain('ro');
      const virtual = new Set(['proc', 'sysfs', 'tmpfs', 'devpts', 'mqueue', 'cgroup', 'cgroup2']);
      // the engine's own files, bind-mounted read-only (with --network none it adds no /etc/hosts or resolv.conf)
      const engineFiles = ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/sbin/docker-init', '/usr/sbin/docker-init'];
      for (const m of mounts.filter((x) => x.point !== '/' && !virtual.has(x.type))) {
        expect(engineFiles, `mounted from the host: ${m.point} (${m.type})`).toContain(m.point);
        expect(m.options, `${m.point} is writable`).toContain('ro');
      }
      expect(probe('cannot')).toEqual(['write /kfarm', 'write /etc']);
    },
    T,
  );

  it(
    'no network interface but loopback, no /dev/shm, and the memory and pids limits asked for',
    () => {
      expect(probe('net')).toEqual(['lo']);
      expect(probe('mount').filter((l) => l.startsWith('/dev/shm '))).toEqual([]);
      expect(probe('memory.max')).toEqual([String(MEMORY_MIB * 1024 * 1024)]);
      expect(probe('pids.max')).toEqual([String(PIDS)]);
    },
    T,
  );

  it(
    'a process a step leaves behind is killed before the next step starts',
    () => {
      const [left] = probe('left');
      expect(left, 'dkms.conf left no sleeper to look for').toMatch(/^(alive|gone) \d+$/);
      expect(left).toMatch(/^gone /);
    },
    T,
  );

  it(
    'modules past the output cap are refused: failed, output-too-large',
    () => {
      expect(big, why(big)).toMatchObject({ verdict: 'failed', reason: 'output-too-large' });
      expect(big.message).toMatch(/the modules take \d+ bytes, more than the 2097152-byte output cap/);
      expect(big.modules.every((m) => m.data === undefined)).toBe(true);
    },
    T,
  );
});
