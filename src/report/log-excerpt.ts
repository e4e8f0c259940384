import { open, realpath } from 'node:fs/promises';
import path from 'node:path';
import { cleanText } from '../util/clean-text.js';

/** How much of a log the JUnit failure carries: enough to see the error, small enough for CI's limits (GitLab: 30 MB a file). */
export const EXCERPT_LIMITS = { bytes: 16 * 1024, lines: 40, lineChars: 400 } as const;

/**
 * The last lines of a log the report names, read from the out dir, or undefined when there is
 * none to read. The path comes from a report.json (perhaps an earlier build's, read back by
 * `kfarm verify`), so it is followed only to a regular file inside the out dir.
 */
export async function readLogExcerpt(outDir: string, rel: string): Promise<string | undefined> {
  if (rel === '' || path.isAbsolute(rel) || rel.split(/[/\\]/).some((p) => p === '..' || p === '') || rel.includes('\0')) return undefined;
  let file: string;
  try {
    const root = await realpath(outDir);
    file = await realpath(path.join(root, rel));
    if (!file.startsWith(`${root}${path.sep}`)) return undefined;
  } catch {
    return undefined; // no such log (a cached row from another out dir, a log not written)
  }
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return undefined;
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return undefined;
    const length = Math.min(stat.size, EXCERPT_LIMITS.bytes);
    const buf = Buffer.alloc(length);
    await handle.read(buf, 0, length, stat.size - length);
    return tailLines(buf.toString('utf8'), stat.size > length);
  } finally {
    await handle.close();
  }
}

/** Pure: the last lines of a log's tail, each cleaned of escapes and cut; the first line dropped when the read started mid-line. */
export function tailLines(text: string, cutAtStart: boolean): string {
  const lines = text.split(/\r?\n/);
  if (cutAtStart) lines.shift();
  while (lines.length > 0 && lines.at(-1)?.trim() === '') lines.pop();
  return lines
    .slice(-EXCERPT_LIMITS.lines)
    .map((l) => cleanText(l, EXCERPT_LIMITS.lineChars))
    .join('\n');
}
