import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeAtomic } from './write-file.js';

export const SUMS_FILE = 'SHA256SUMS';

/**
 * SHA256SUMS of an out dir, in `sha256sum -c` format, sorted by path: every file kfarm wrote
 * except the per-kernel logs (diagnostics, not deliverables) and itself.
 */
export async function writeChecksums(outDir: string): Promise<string> {
  const files = (await listFiles(outDir, '')).filter((f) => f !== SUMS_FILE && !f.startsWith('logs/') && !/\.tmp-\d+$/.test(f)).sort();
  const lines = await Promise.all(files.map(async (f) => `${createHash('sha256').update(await readFile(path.join(outDir, f))).digest('hex')}  ${f}`));
  await writeAtomic(path.join(outDir, SUMS_FILE), Buffer.from(lines.map((l) => `${l}\n`).join('')));
  return path.join(outDir, SUMS_FILE);
}

async function listFiles(root: string, rel: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(path.join(root, rel), { withFileTypes: true })) {
    const child = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(root, child)));
    else if (entry.isFile()) out.push(child);
  }
  return out;
}
