/**
 * The /proc side of bench CPU accounting (the arithmetic is in cpu-account.ts): host and daemon
 * samples taken around one run, and the run's own CPU from /usr/bin/time.
 */
import { access, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { run, type RunOptions, type RunResult } from '../../src/process/run.js';
import { cpuAccount, parsePidStat, parseProcStat, parseTimeOutput, procDeltaS, type CpuAccount, type HostTicks, type ProcTicks } from './cpu-account.js';

export const DAEMONS = ['dockerd', 'containerd'] as const;
export type Daemon = (typeof DAEMONS)[number];

export interface CpuSample {
  host: HostTicks;
  daemons: Record<Daemon, ProcTicks | undefined>;
  /** this process's CPU seconds */
  benchS: number;
}

/** clock ticks per second of /proc's figures (USER_HZ, 100 on every usual build) */
export async function clockTicks(): Promise<number> {
  const r = await run('getconf', ['CLK_TCK'], { allowFailure: true }).catch(() => undefined);
  const hz = Number(r?.stdout);
  return r?.exitCode === 0 && hz > 0 ? hz : 100;
}

/** pids of the daemons by /proc/<pid>/comm; looked up once, a sample notices a restart by start time */
export async function daemonPids(): Promise<Record<Daemon, number | undefined>> {
  const found: Record<Daemon, number | undefined> = { dockerd: undefined, containerd: undefined };
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const comm = (await readFile(`/proc/${name}/comm`, 'utf8').catch(() => '')).trim();
    if ((DAEMONS as readonly string[]).includes(comm) && found[comm as Daemon] === undefined) found[comm as Daemon] = Number(name);
  }
  return found;
}

export async function sampleCpu(pids: Record<Daemon, number | undefined>): Promise<CpuSample> {
  const host = parseProcStat(await readFile('/proc/stat', 'utf8'));
  if (!host) throw new Error('/proc/stat has no aggregate cpu line');
  const proc = async (pid: number | undefined) => (pid === undefined ? undefined : parsePidStat(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')));
  const own = process.cpuUsage();
  return { host, daemons: { dockerd: await proc(pids.dockerd), containerd: await proc(pids.containerd) }, benchS: (own.user + own.system) / 1e6 };
}

// looked up once per bench process: the tick rate, the daemons' pids, whether GNU time is there
let probe: Promise<{ hz: number; pids: Record<Daemon, number | undefined>; time: boolean }> | undefined;

/** runs a command (allowFailure is the caller's) and says where the host's CPU went meanwhile */
export async function runAccounted(file: string, args: readonly string[], options: RunOptions): Promise<{ result: RunResult; seconds: number; startedAtMs: number; endedAtMs: number; cpu: CpuAccount }> {
  probe ??= (async () => ({ hz: await clockTicks(), pids: await daemonPids(), time: await access('/usr/bin/time').then(() => true, () => false) }))();
  const { hz, pids, time } = await probe;
  const rusage = path.join(os.tmpdir(), `kfarm-bench-rusage-${process.pid}-${Math.random().toString(36).slice(2)}`);
  // GNU time reports the process's rusage when it is reaped: its own CPU and its waited children's
  const argv = time ? ['/usr/bin/time', '-o', rusage, '-f', '%U %S', file, ...args] : [file, ...args];
  const before = await sampleCpu(pids);
  const startedAtMs = Date.now();
  const t0 = performance.now();
  const result = await run(argv[0] as string, argv.slice(1), options);
  const seconds = (performance.now() - t0) / 1000;
  const endedAtMs = Date.now();
  const after = await sampleCpu(pids);
  const kfarmS = time ? (parseTimeOutput(await readFile(rusage, 'utf8').catch(() => '')) ?? Number.NaN) : Number.NaN;
  await rm(rusage, { force: true });
  const cpu = cpuAccount({
    hostBefore: before.host,
    hostAfter: after.host,
    hz,
    kfarmS,
    dockerdS: procDeltaS(before.daemons.dockerd, after.daemons.dockerd, hz),
    containerdS: procDeltaS(before.daemons.containerd, after.daemons.containerd, hz),
    benchS: after.benchS - before.benchS,
  });
  return { result, seconds, startedAtMs, endedAtMs, cpu };
}
