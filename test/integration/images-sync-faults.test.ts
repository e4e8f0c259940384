import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverKernels } from '../../src/archive/discover.js';
import { resolveReleases } from '../../src/archive/releases.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { compareKernels } from '../../src/matrix/kernel-target.js';
import type { BuildReport } from '../../src/report/report.js';
import { KFARM_BIN, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

/**
 * `kfarm images sync` in bad conditions, against real engines and the real archive:
 * an archive that refuses connections, and an engine whose disk fills part-way through.
 */
const logger = pino({ level: 'silent' });

describe('images sync: the archive unreachable', () => {
  const runtime = new DockerRuntime();
  const allIds = async () => (await runtime.listImages('io.kfarm.image')).map((i) => `${i.id} ${[...i.tags].sort().join(',')}`).sort();
  const closed = 'http://127.0.0.1:9'; // the discard port: nothing listens, connections are refused
  let env: Record<string, string>;

  beforeAll(async () => {
    env = await isolatedEnv('sync-offline');
    // a valid cached index: sync must still refuse to go on from it
    const cached = await kfarm(['kernels', '--available', 'debian-12', '--arch', 'amd64'], env);
    expect(cached.exitCode, cached.stderr).toBe(0);
  }, 120_000);

  it('exit 3 naming the URL and what failed, says what to do and that the cache is not used; no image added or removed', async () => {
    const before = await allIds();
    expect(before.length, 'run `bash scripts/setup.sh` first').toBeGreaterThan(0);
    const run = await kfarm(['images', 'sync', 'debian-12', '--arch', 'amd64', '--prune', '--mirror', `${closed}/debian`, '--security-mirror', `${closed}/debian-security`], env);
    expect(run.exitCode, run.stderr).toBe(3);
    expect(run.stderr).toMatch(
      /kfarm: error: the Debian archive is unreachable: http:\/\/127\.0\.0\.1:9\/debian(-security)?\/dists\/bookworm[a-z-]*\/InRelease: connect ECONNREFUSED/,
    );
    expect(run.stderr).toContain('from this machine to 127.0.0.1:9');
    expect(run.stderr).toContain('nothing was synced');
    expect(run.stderr).toContain('No image was added or removed');
    expect(run.stderr).toContain('Check the network');
    expect(run.stderr).toContain('that the mirror is up');
    expect(run.stderr).toContain('does not go on from the indexes cached in $KFARM_STATE_DIR/archive');
    expect(await allIds()).toEqual(before);
  }, 120_000);

  it('a mirror that is not an http URL: exit 2', async () => {
    const run = await kfarm(['images', 'sync', 'debian-12', '--arch', 'amd64', '--mirror', 'ftp://example.org/debian'], env);
    expect(run.exitCode, run.stderr).toBe(2);
    expect(run.stderr).toContain('--mirror ftp://example.org/debian is not an http(s) URL');
  });
});

describe('images sync: bad input, named with what exists', () => {
  it('a release without a recipe: exit 2, lists the releases', async () => {
    const run = await kfarm(['images', 'sync', 'debian-10'], await isolatedEnv('sync-badrelease'));
    expect(run.exitCode, run.stderr).toBe(2);
    expect(run.stderr).toContain('kfarm has no recipe for release "debian-10"');
    expect(run.stderr).toContain('Releases: debian-11 (bullseye), debian-12 (bookworm), debian-13 (trixie)');
  });

  it('an arch without a recipe: exit 2, lists the arches', async () => {
    const run = await kfarm(['images', 'sync', 'debian-12', '--arch', 'riscv64'], await isolatedEnv('sync-badarch'));
    expect(run.exitCode, run.stderr).toBe(2);
    expect(run.stderr).toContain('kfarm has no recipe for arch "riscv64"');
    expect(run.stderr).toMatch(/Arches: amd64 \(x86_64\)/);
  });
});

/**
 * A second Docker engine whose data root is a 1200 MB ext4 loop mount: the debian-12 toolchain
 * (about 400 MB, loaded from the host's engine) fits, and two or three kernel images (about
 * 90 MB each, plus apt's lists and downloads while they build, two at a time) before the disk
 * fills. It runs in its own network namespace (never near the host's docker0) that reaches the
 * archive through a veth pair masqueraded by the host: kernel builds download their headers.
 */
describe('images sync: the engine’s disk fills', () => {
  const tag = String(process.pid % 250);
  const netns = `kfarm-df-${process.pid}`;
  const vethHost = `kfdf${process.pid % 100000}h`;
  const vethNs = `kfdf${process.pid % 100000}n`;
  const subnet = `10.213.${tag}`;
  const iptablesRules: string[][] = [
    ['-t', 'nat', '-A', 'POSTROUTING', '-s', `${subnet}.0/30`, '-j', 'MASQUERADE'],
    ['-I', 'FORWARD', '1', '-i', vethHost, '-j', 'ACCEPT'],
    ['-I', 'FORWARD', '1', '-o', vethHost, '-j', 'ACCEPT'],
  ];
  const added: string[][] = [];
  let dir: string;
  let mnt: string;
  let socket: string;
  let engine: ResultPromise | undefined;
  let env: Record<string, string>;
  let kernels: string[] = [];
  let sync: { exitCode: number; output: string } | undefined;

  const sh = (cmd: string, args: string[]) => execa(cmd, args, { timeout: 60_000 });
  const smallDocker = (args: string[]) => execa('docker', ['--host', `unix://${socket}`, ...args], { timeout: 120_000 });
  /** the kernels whose images the small engine holds (tagged kfarm/debian-12:<kernel>) */
  const heldKernels = async () => {
    const lines = (await smallDocker(['images', '--filter', 'label=io.kfarm.kernels', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter(Boolean);
    const kernels: string[] = [];
    for (const ref of lines) kernels.push((await smallDocker(['image', 'inspect', '--format', '{{index .Config.Labels "io.kfarm.kernels"}}', ref])).stdout.trim());
    return kernels.sort();
  };

  beforeAll(async () => {
    dir = await tempDir('diskfull');
    mnt = path.join(dir, 'mnt');
    socket = path.join(dir, 'docker.sock');
    await mkdir(mnt);
    await mkdir(path.join(dir, 'tmp'));
    await sh('truncate', ['-s', '1200M', path.join(dir, 'disk.img')]);
    await sh('mkfs.ext4', ['-q', '-F', path.join(dir, 'disk.img')]);
    await sh('mount', ['-o', 'loop', path.join(dir, 'disk.img'), mnt]);
    await sh('ip', ['netns', 'add', netns]);
    await sh('ip', ['link', 'add', vethHost, 'type', 'veth', 'peer', 'name', vethNs, 'netns', netns]);
    await sh('ip', ['addr', 'add', `${subnet}.1/30`, 'dev', vethHost]);
    await sh('ip', ['link', 'set', vethHost, 'up']);
    const inNs = (args: string[]) => sh('ip', ['netns', 'exec', netns, 'ip', ...args]);
    await inNs(['addr', 'add', `${subnet}.2/30`, 'dev', vethNs]);
    await inNs(['link', 'set', vethNs, 'up']);
    await inNs(['link', 'set', 'lo', 'up']);
    await inNs(['route', 'add', 'default', 'via', `${subnet}.1`]);
    for (const rule of iptablesRules) {
      await sh('iptables', rule);
      added.push(rule);
    }
    // nsenter, not `ip netns exec`: that remounts /sys and dockerd then finds no cgroups.
    // DOCKER_TMPDIR off the small disk: `docker load` stages the whole tar there first.
    engine = execa(
      'nsenter',
      [
        `--net=/var/run/netns/${netns}`,
        '--',
        'dockerd',
        '--data-root',
        path.join(mnt, 'data'),
        '--exec-root',
        path.join(dir, 'exec'),
        '--pidfile',
        path.join(dir, 'dockerd.pid'),
        '--host',
        `unix://${socket}`,
        '--bip',
        `172.31.${tag}.1/24`,
      ],
      { reject: false, stdout: 'ignore', stderr: 'ignore', env: { ...process.env, DOCKER_TMPDIR: path.join(dir, 'tmp') } },
    );
    let up = false;
    for (let i = 0; i < 120 && !up; i++) {
      up = (await execa('docker', ['--host', `unix://${socket}`, 'info'], { reject: false, timeout: 5000 })).exitCode === 0;
      if (!up) await new Promise((r) => setTimeout(r, 250));
    }
    expect(up, 'the small Docker engine did not start within 30 s').toBe(true);
    await execa('bash', ['-c', `set -o pipefail; docker save kfarm/base:bookworm kfarm/debian-12-toolchain:latest | docker --host unix://${socket} load`], { timeout: 120_000 });

    env = { ...(await isolatedEnv('diskfull')), DOCKER_HOST: `unix://${socket}` };
    const discovery = await discoverKernels(resolveReleases(['debian-12']), ['amd64'], { cacheDir: path.join(env.KFARM_STATE_DIR ?? '', 'archive'), logger });
    kernels = discovery.kernels
      .filter((k) => k.flavour === 'amd64' && k.abi.startsWith('6.1.0-') && k.fetch.fetchable)
      .map((k) => k.kernel)
      .sort(compareKernels)
      .slice(-6);
    expect(kernels).toHaveLength(6);
  }, 180_000);

  afterAll(async () => {
    // every step on its own: one that fails must not leave the others undone
    const attempt = async (what: () => Promise<unknown>) => {
      try {
        await what();
      } catch {
        /* cleaned up as far as possible */
      }
    };
    if (engine) {
      engine.kill('SIGTERM');
      await attempt(() => Promise.race([engine, new Promise((r) => setTimeout(r, 30_000))]));
      if (engine.exitCode === null) engine.kill('SIGKILL');
    }
    for (const rule of added.reverse()) {
      const del = rule.map((a) => (a === '-A' || a === '-I' ? '-D' : a)).filter((a, i, all) => !(all[i - 1] === 'FORWARD' && a === '1'));
      await attempt(() => sh('iptables', del));
    }
    await attempt(() => sh('ip', ['link', 'del', vethHost]));
    await attempt(() => sh('ip', ['netns', 'del', netns]));
    if (mnt) {
      for (let i = 0; i < 20; i++) {
        if ((await execa('umount', [mnt], { reject: false })).exitCode === 0) break;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    if (dir) await attempt(() => rm(dir, { recursive: true, force: true }));
  }, 120_000);

  it('stops starting kernels once the disk is full, keeps those added, tags no half image, says how far it got: exit 3', async () => {
    // under a pseudo-terminal (script), as an operator runs it: the live status is redrawn
    const command = ['node', KFARM_BIN, 'images', 'sync', 'debian-12', '--arch', 'amd64', '--kernels', kernels.join(',')].map((a) => `'${a}'`).join(' ');
    const run = await execa('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, ...env }, reject: false, timeout: 600_000 });
    sync = { exitCode: run.exitCode ?? -1, output: String(run.stdout) };
    const out = sync.output;
    expect(sync.exitCode, out).toBe(3);
    expect(out).toContain('6 to add, 0 unchanged');
    expect(out).toMatch(
      /kfarm: error: the Docker engine's disk is full \("no space left on device" while building \S+\): sync stopped after adding (\d) of 6 kernel\(s\); failed: \S+.*; not started: [1-9]/,
    );
    expect(out).toContain('docker system df');
    expect(out).toContain('then rerun `kfarm images sync`: it adds only the kernels still missing');
    // the live status: counts, elapsed and an estimate, redrawn in place
    expect(out).toMatch(/sync: \d added, \d running, \d queued, \d failed of 6; [\d.]+ s(, about [\d.]+ (s|min) left)?/);
    expect(out).toMatch(/about [\d.]+ (s|min)[\d s]* left/);
    expect(out).toMatch(/\r/);

    const stopped = /sync stopped after adding (\d) of 6/.exec(out);
    const addedCount = Number(stopped?.[1]);
    expect(addedCount).toBeGreaterThanOrEqual(1);
    const held = await heldKernels();
    expect(held).toHaveLength(addedCount);
    const failed = /; failed: ([^;\n]+)/.exec(out)?.[1]?.split(', ') ?? [];
    expect(failed.length).toBeGreaterThanOrEqual(1);
    for (const kernel of failed) {
      expect(held, kernel).not.toContain(kernel);
      // not even untagged: the kernel label is only on a finished image
      expect((await smallDocker(['images', '-a', '-q', '--filter', `label=io.kfarm.kernels=${kernel}`])).stdout.trim(), kernel).toBe('');
    }
  }, 600_000);

  it('afterwards kfarm build builds hello for every kernel the engine holds', async () => {
    expect(sync?.exitCode).toBe(3);
    const held = await heldKernels();
    const out = await tempDir('diskfull-out');
    const run = await kfarm(['build', example('hello'), '--out', out, '--kernels', 'all'], env);
    expect(run.exitCode, run.stderr).toBe(0);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as BuildReport;
    expect(report.kernels.map((k) => [k.kernel, k.verdict]).sort()).toEqual(held.map((k) => [k, 'built']).sort());
  }, 300_000);
});
