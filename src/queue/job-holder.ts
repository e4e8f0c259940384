import { currentInstance, ownerIsGone, processStartTime } from '../process/instance.js';
import { isAlive } from '../process/pid.js';

/**
 * Who holds a running job: the BullMQ worker's name, `<hostname>/<pid>:<start>`, which BullMQ
 * keeps on the job as `processedBy`. A coordinator killed with SIGKILL leaves its running jobs
 * `active` under a lock that lives on for up to 30 s, and BullMQ's stall check gives them back
 * only after that (15-30 s): a rerun on the same private Redis would wait for them. With the
 * holder named, a process on the same host sees that it is gone and takes the job over at once.
 */
export function holderName(hostname: string, instance: string = currentInstance()): string {
  return `${hostname}/${instance}`;
}

/** What this host says about a pid right now (the I/O half of holderIsGone). */
export function pidState(pid: number): { alive: boolean; startTime: string | undefined } {
  return { alive: isAlive(pid), startTime: processStartTime(pid) };
}

/**
 * Whether the worker that holds a job is a process of this host that is gone (dead, or its pid
 * recycled). A holder of another host, an unnamed one, or this very process: never judged gone
 * here (stall detection is for those). Pure but for `state`.
 */
export function holderIsGone(
  processedBy: string | undefined,
  hostname: string,
  state: (pid: number) => { alive: boolean; startTime: string | undefined } = pidState,
  self: string = currentInstance(),
): boolean {
  if (!processedBy) return false;
  const slash = processedBy.lastIndexOf('/');
  if (slash <= 0 || processedBy.slice(0, slash) !== hostname) return false;
  const instance = processedBy.slice(slash + 1);
  const pid = Number(instance.split(':')[0]);
  if (!/^\d+:\S+$/.test(instance) || !Number.isInteger(pid) || pid <= 0) return false;
  return ownerIsGone({ instance, pid: undefined }, self, state(pid));
}
