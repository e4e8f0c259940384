/**
 * Pure: where a run's CPU went, from /proc samples taken before and after it. The host's busy
 * time (/proc/stat) split into the kfarm process (with its waited children, from its rusage),
 * dockerd, containerd, this bench process, and the rest: the build containers with their shims
 * and runc, which nobody we can ask reaps (they are gone before the after sample).
 */

/** The aggregate `cpu` line of /proc/stat, in clock ticks */
export interface HostTicks {
  /** user + nice + system + irq + softirq */
  busy: number;
  /** idle + iowait */
  idle: number;
  /** taken by the hypervisor: neither busy nor idle for us */
  steal: number;
}

export function parseProcStat(text: string): HostTicks | undefined {
  const line = text.split('\n').find((l) => /^cpu\s/.test(l));
  if (!line) return undefined;
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  // guest time is already inside user and nice: adding it would count it twice
  return { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal };
}

/** One process from /proc/<pid>/stat: identity (pid + start time, a restarted daemon is another) and CPU ticks */
export interface ProcTicks {
  pid: number;
  comm: string;
  startTime: number;
  /** utime + stime + cutime + cstime: its own and its waited children's (a daemon's short helpers) */
  cpu: number;
}

export function parsePidStat(text: string): ProcTicks | undefined {
  // comm is in parentheses and may itself hold spaces and ')': the fields start after the last ')'
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const f = text.slice(close + 2).trim().split(/\s+/).map(Number);
  // after comm: state(3) ... utime(14) stime(15) cutime(16) cstime(17) ... starttime(22), 1-based as in proc(5)
  const at = (field: number) => f[field - 3];
  const [utime, stime, cutime, cstime, startTime] = [at(14), at(15), at(16), at(17), at(22)];
  if ([utime, stime, cutime, cstime, startTime].some((n) => n === undefined || !Number.isFinite(n))) return undefined;
  return { pid: Number(text.slice(0, open)), comm: text.slice(open + 1, close), startTime: startTime as number, cpu: (utime as number) + (stime as number) + (cutime as number) + (cstime as number) };
}

/** seconds of CPU between two samples of one process; NaN when it is missing or restarted in between */
export function procDeltaS(before: ProcTicks | undefined, after: ProcTicks | undefined, hz: number): number {
  if (!before || !after || before.pid !== after.pid || before.startTime !== after.startTime) return Number.NaN;
  return (after.cpu - before.cpu) / hz;
}

/** `/usr/bin/time -f '%U %S'` output (its last line): user + sys seconds */
export function parseTimeOutput(text: string): number | undefined {
  const m = /([\d.]+) ([\d.]+)\s*$/.exec(text.trim());
  return m ? Number(m[1]) + Number(m[2]) : undefined;
}

/** CPU seconds of one run, or of several summed */
export interface CpuAccount {
  busyS: number;
  idleS: number;
  stealS: number;
  kfarmS: number;
  dockerdS: number;
  containerdS: number;
  benchS: number;
  /** busy minus every process named above: the build containers, their shims and runc (and anything else the host ran) */
  containersS: number;
}

export interface CpuMeasures {
  hostBefore: HostTicks;
  hostAfter: HostTicks;
  hz: number;
  kfarmS: number;
  dockerdS: number;
  containerdS: number;
  benchS: number;
}

export function cpuAccount(m: CpuMeasures): CpuAccount {
  const busyS = (m.hostAfter.busy - m.hostBefore.busy) / m.hz;
  // an unmeasured daemon (NaN) leaves its share in the rest rather than poisoning it
  const known = [m.kfarmS, m.dockerdS, m.containerdS, m.benchS].filter(Number.isFinite).reduce((a, b) => a + b, 0);
  return {
    busyS,
    idleS: (m.hostAfter.idle - m.hostBefore.idle) / m.hz,
    stealS: (m.hostAfter.steal - m.hostBefore.steal) / m.hz,
    kfarmS: m.kfarmS,
    dockerdS: m.dockerdS,
    containerdS: m.containerdS,
    benchS: m.benchS,
    containersS: busyS - known,
  };
}

export function sumAccounts(xs: readonly CpuAccount[]): CpuAccount {
  const total = (k: keyof CpuAccount) => xs.reduce((a, x) => a + x[k], 0);
  return { busyS: total('busyS'), idleS: total('idleS'), stealS: total('stealS'), kfarmS: total('kfarmS'), dockerdS: total('dockerdS'), containerdS: total('containerdS'), benchS: total('benchS'), containersS: total('containersS') };
}

/**
 * "busy 110.7 s (kfarm process 4.4, dockerd 1.4, containerd 0.6, containers 104.3 = 1.07 x dkms CPU,
 * 1.12 x bare make CPU), idle 5.0 s (2.5 s of wall on 2 cores)"; the baselines' CPU when measured.
 */
export function cpuLine(a: CpuAccount, base: { dkmsCpuS?: number; bareCpuS?: number; cores: number }): string {
  const s = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '?');
  const vs = [base.dkmsCpuS ? `${(a.containersS / base.dkmsCpuS).toFixed(2)} x dkms CPU` : '', base.bareCpuS ? `${(a.containersS / base.bareCpuS).toFixed(2)} x bare make CPU` : ''].filter(Boolean);
  const parts = [`kfarm process ${s(a.kfarmS)}`, `dockerd ${s(a.dockerdS)}`, `containerd ${s(a.containerdS)}`, ...(a.benchS >= 0.05 ? [`this bench ${s(a.benchS)}`] : []), `containers ${s(a.containersS)}${vs.length ? ` = ${vs.join(', ')}` : ''}`];
  const steal = a.stealS >= 0.05 ? `, stolen by the hypervisor ${s(a.stealS)} s` : '';
  return `busy ${s(a.busyS)} s (${parts.join(', ')}), idle ${s(a.idleS)} s (${s(a.idleS / base.cores)} s of wall on ${base.cores} cores)${steal}`;
}
