import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Which run of a process this is: its pid plus its start time (field 22 of /proc/<pid>/stat,
 * clock ticks since boot), written "<pid>:<start>". A pid alone is not enough: a compose worker
 * is PID 1 in its container and is PID 1 again after a restart, under the same hostname, and a
 * host recycles pids. Without /proc the second part is a random id, unique to this run.
 */
export function currentInstance(): string {
  cached ??= `${process.pid}:${processStartTime(process.pid) ?? `r${randomUUID()}`}`;
  return cached;
}
let cached: string | undefined;

/** The start time of a running process, or undefined when it does not run or there is no /proc. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; starttime is field 22,
    // the 20th after the closing parenthesis
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = fields[19];
    return start && /^\d+$/.test(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

/** What a container's labels say about the process that started it. */
export interface OwnerLabels {
  /** "<pid>:<start>" (absent on containers from kfarm versions before instances) */
  instance: string | undefined;
  /** the owner's pid as a label of its own */
  pid: string | undefined;
}

/** What this host says, now, about the pid the labels name. */
export interface PidState {
  alive: boolean;
  /** undefined when unknown (not running, no /proc) */
  startTime: string | undefined;
}

/** The owner's pid from its labels, or undefined when they name none. */
export function ownerPid(owner: OwnerLabels): number | undefined {
  const pid = Number(owner.instance?.split(':')[0] ?? owner.pid);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Whether the process that started a container is gone, so the container is an orphan to
 * remove. Never this very run's own containers; always a predecessor's that had this pid (a
 * restarted PID 1); otherwise gone when its pid is dead, or alive with another start time (the
 * pid was recycled). An owner whose start time cannot be compared is kept while its pid runs.
 */
export function ownerIsGone(owner: OwnerLabels, self: string, state: PidState): boolean {
  if (owner.instance === self) return false;
  const pid = ownerPid(owner);
  if (pid === undefined) return true;
  if (pid === ownerPid({ instance: self, pid: undefined })) return true;
  if (!state.alive) return true;
  const labelled = owner.instance?.split(':')[1];
  return labelled !== undefined && /^\d+$/.test(labelled) && state.startTime !== undefined && state.startTime !== labelled;
}
