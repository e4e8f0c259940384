import { access, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeDirs } from '../util/make-dir.js';

/**
 * Where a host remembers that KVM could not boot a guest here: `kfarm worker`'s default lanes and
 * a local run's routing leave KVM out while it exists.
 */
export const kvmBrokenMarker = (stateDir: string): string => path.join(stateDir, 'verify', 'kvm-broken');

export async function kvmKnownBroken(stateDir: string): Promise<boolean> {
  return access(kvmBrokenMarker(stateDir)).then(
    () => true,
    () => false,
  );
}

export async function markKvmBroken(stateDir: string): Promise<void> {
  await makeDirs(path.dirname(kvmBrokenMarker(stateDir)));
  await writeFile(kvmBrokenMarker(stateDir), `a KVM boot reached no init at ${new Date().toISOString()}; remove this file once KVM works\n`);
}
