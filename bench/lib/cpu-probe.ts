/**
 * The /proc side of bench CPU accounting (the arithmetic is in cpu-account.ts): host and daemon
 * samples taken around one run, and the run's own CPU from /usr/bin/time.
 */
import { readdir, readFile } from 'node:fs/promises';
import { run } from '../../src/process/run.js';
import { parsePidStat, parseProcStat, type HostTicks, type ProcTicks } from './cpu-account.js';

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
