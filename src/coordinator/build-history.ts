import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { mergeHistory, parseHistory, type BuildHistory, type BuiltKernel } from '../matrix/new-kernels.js';
import { writeAtomic } from '../util/write-atomic.js';

/**
 * What `kfarm build --kernels new` compares against: the kernels earlier builds of one source
 * directory covered (built or excluded), kept in the state dir. Keyed by the source's absolute
 * path, since the module's name is only known once a build container has read dkms.conf; a
 * nightly job builds the same checkout every night.
 */
export function historyFile(stateDir: string, sourceDir: string): string {
  const key = createHash('sha256').update(sourceDir).digest('hex').slice(0, 32);
  return path.join(stateDir, 'history', `${key}.json`);
}

/** undefined: never built here (every held kernel is new); a damaged file counts as that too */
export async function readHistory(stateDir: string, sourceDir: string): Promise<BuildHistory | undefined> {
  const text = await readFile(historyFile(stateDir, sourceDir), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parseHistory(text, sourceDir);
}

/** Adds what this build covered; failed kernels stay out, so they are new next time too. */
export async function recordHistory(stateDir: string, sourceDir: string, covered: readonly BuiltKernel[]): Promise<void> {
  const merged = mergeHistory(await readHistory(stateDir, sourceDir), sourceDir, covered);
  await writeAtomic(historyFile(stateDir, sourceDir), Buffer.from(`${JSON.stringify(merged, null, 2)}\n`));
}
