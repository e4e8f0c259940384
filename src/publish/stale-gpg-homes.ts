import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { isAlive } from '../process/pid.js';
import { run } from '../process/run.js';

/** A key file's temporary GNUPGHOME is named after the process that made it: `kfarm-gpg-<pid>-` and six random characters (mkdtemp). */
export const GPG_HOME_PREFIX = 'kfarm-gpg-';

export function gpgHomePrefix(pid: number = process.pid): string {
  return `${GPG_HOME_PREFIX}${pid}-`;
}

/**
 * A publish killed with SIGKILL never ran close(): its temporary home (a copy of the secret key)
 * and its gpg-agent (which daemonizes out of the process group, and holds inotify instances)
 * outlive it. The next key opened in the same tmp dir removes both for every home whose
 * process is gone. A live process with that pid keeps its home: the safe side of pid reuse.
 * Only this user's homes are touched.
 */
export async function removeStaleGpgHomes(tmpDir: string): Promise<string[]> {
  const removed: string[] = [];
  const names = await readdir(tmpDir).catch(() => [] as string[]);
  for (const name of names) {
    const pid = /^kfarm-gpg-(\d+)-[A-Za-z0-9]{6}$/.exec(name)?.[1];
    if (pid === undefined || isAlive(Number(pid))) continue;
    const home = path.join(tmpDir, name);
    const info = await stat(home).catch(() => undefined);
    if (!info?.isDirectory() || info.uid !== process.getuid?.()) continue;
    await run('gpgconf', ['--kill', 'gpg-agent'], { env: { ...(process.env as Record<string, string>), GNUPGHOME: home }, allowFailure: true }).catch(() => undefined);
    await rm(home, { recursive: true, force: true });
    removed.push(home);
  }
  return removed;
}
