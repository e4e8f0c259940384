import type { KernelRecord } from '../job/job-payload.js';

export interface ModuleIdentity {
  name: string;
  version: string;
}

/**
 * The module's name and version, from what dkms.conf said on each kernel (every build
 * evaluates it, as `dkms add` then `dkms build` do). DKMS registers a module under one name
 * and version; a dkms.conf whose answer depends on the kernel would scatter it over several,
 * so the kernels that disagree with the majority fail with `bad-conf`. Ties go to the first
 * kernel. Records without a name and version (the build ended before dkms.conf gave both)
 * stay as they are.
 */
export function settleIdentity<T extends { record: KernelRecord }>(results: readonly T[]): { identity: ModuleIdentity | undefined; results: T[] } {
  const votes = new Map<string, { identity: ModuleIdentity; count: number }>();
  for (const { record } of results) {
    if (!record.packageName || !record.packageVersion) continue;
    const key = `${record.packageName}\0${record.packageVersion}`;
    const vote = votes.get(key) ?? { identity: { name: record.packageName, version: record.packageVersion }, count: 0 };
    vote.count++;
    votes.set(key, vote);
  }
  let winner: { identity: ModuleIdentity; count: number } | undefined;
  for (const vote of votes.values()) if (!winner || vote.count > winner.count) winner = vote;
  if (!winner) return { identity: undefined, results: [...results] };
  const { identity, count } = winner;
  return {
    identity,
    results: results.map((result) => {
      const { record } = result;
      if (!record.packageName || !record.packageVersion || (record.packageName === identity.name && record.packageVersion === identity.version)) return result;
      const message = `dkms.conf gives ${record.packageName}/${record.packageVersion} on this kernel but ${identity.name}/${identity.version} on ${count} other(s): the name and version must not depend on the kernel`;
      return { ...result, record: { ...record, verdict: 'failed', reason: 'bad-conf', message, firstError: message, modules: [] } };
    }),
  };
}
