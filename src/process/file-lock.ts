import { open, readFile } from 'node:fs/promises';
import fsx from 'fs-native-extensions';

/**
 * An exclusive lock the kernel keeps for us: on Linux an open-file-description lock, so two
 * opens conflict even inside one process. It ends when released, when the file is closed, or
 * when the holder dies however it dies: there is no stale lock to detect and no holder to judge
 * dead, so two starters can never both decide to take over. The file itself stays; removing it
 * would let one process lock a new file while another still holds or waits on the old one.
 */
export interface FileLock {
  release(): Promise<void>;
}

/** Takes the lock now, or returns undefined when another holder has it. Writes `note` into the file. */
export async function tryLockFile(file: string, note: string): Promise<FileLock | undefined> {
  // Node opens with O_CLOEXEC: a daemon started while the lock is held does not inherit it.
  const handle = await open(file, 'a+', 0o600);
  let locked = false;
  try {
    locked = fsx.tryLock(handle.fd);
  } finally {
    if (!locked) await handle.close();
  }
  if (!locked) return undefined;
  try {
    // who holds it, for error messages only; the lock is the kernel's, not this text
    await handle.truncate(0);
    await handle.write(note, 0);
  } catch (err) {
    await handle.close();
    throw err;
  }
  return { release: () => handle.close() };
}

/** What the last holder wrote into the lock file (its pid), for messages. */
export async function lockNote(file: string): Promise<string> {
  return (await readFile(file, 'utf8').catch(() => '')).trim();
}
