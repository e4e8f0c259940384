import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { insideDir } from '../util/inside-dir.js';
import { makeDirs } from '../util/make-dir.js';

/**
 * The out dir's swap, apart from the staging that prepares it (out-dir.ts). A staging dir
 * `<out>/.kfarm-staging-<pid>-<random>/` holds `files/` (the out dir's new and replaced files,
 * at their paths), `old/` (directories replaced whole, moved aside during the swap) and, from
 * the moment the swap starts, `commit.json`: the list of moves. Every move is a rename on the
 * same file system, and each is idempotent, so a swap cut short (a crash, a kill) is finished by
 * the next kfarm that opens the out dir; a staging dir without `commit.json` was never committed
 * and is removed whole. Either way the out dir ends as before the command or as after it.
 */
export const STAGING_PREFIX = '.kfarm-staging-';
export const COMMIT_FILE = 'commit.json';

const insideRel = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.split('/').every((s) => s !== '' && s !== '.' && s !== '..' && !s.includes('\0')));
const opSchema = z.union([z.object({ put: insideRel, dir: z.boolean().optional() }), z.object({ remove: insideRel })]);
export type CommitOp = z.infer<typeof opSchema>;
const manifestSchema = z.object({ ops: z.array(opSchema) });

/** this process's open stages: never taken for leftovers (one command may open a second stage while its first is open) */
const ours = new Set<string>();
export const holdStaging = (staging: string) => void ours.add(staging);
export const releaseStaging = (staging: string) => void ours.delete(staging);

const at = (root: string, rel: string) => insideDir(root, ...rel.split('/'));
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/** Writes commit.json, then runs its moves: from here on the swap is promised, and finished by whoever comes next. */
export async function commitStaging(outDir: string, staging: string, ops: readonly CommitOp[]): Promise<void> {
  await writeFile(path.join(staging, COMMIT_FILE), JSON.stringify({ ops }));
  await applyOps(outDir, staging, ops);
  await rm(staging, { recursive: true, force: true });
  releaseStaging(staging);
}

/** The moves, in order; one already done is skipped (its staged file is gone), so a second run finishes the first. */
async function applyOps(outDir: string, staging: string, ops: readonly CommitOp[]): Promise<void> {
  for (const op of ops) {
    if ('remove' in op) {
      await rm(at(outDir, op.remove), { recursive: true, force: true });
      continue;
    }
    const from = at(path.join(staging, 'files'), op.put);
    if (!(await exists(from))) continue;
    const to = at(outDir, op.put);
    await makeDirs(path.dirname(to));
    if (op.dir && (await exists(to))) {
      // a directory replaced whole (a format's packages): rename cannot replace a full one, so the old one steps aside first
      const old = at(path.join(staging, 'old'), op.put);
      await rm(old, { recursive: true, force: true });
      await makeDirs(path.dirname(old));
      await rename(to, old);
    }
    await rename(from, to);
  }
}

/**
 * Staging dirs earlier runs left behind (killed before they could clean up): one with
 * commit.json is finished, any other removed. Another live kfarm's (its pid runs) is left alone;
 * a dir named with this process's own pid cannot be one we are using yet (a container's kfarm
 * is often pid 1 every time). Best effort: what cannot be cleaned stays hidden, never listed.
 */
export async function settleLeftovers(outDir: string): Promise<void> {
  const names = await readdir(outDir).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.startsWith(STAGING_PREFIX))) {
    const pid = Number(/^\.kfarm-staging-(\d+)-/.exec(name)?.[1]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) continue;
    const staging = path.join(outDir, name);
    if (ours.has(staging)) continue;
    try {
      const manifest = await readFile(path.join(staging, COMMIT_FILE), 'utf8').then(
        (t) => manifestSchema.parse(JSON.parse(t)),
        () => undefined,
      );
      if (manifest) await applyOps(outDir, staging, manifest.ops);
      await rm(staging, { recursive: true, force: true });
    } catch {
      // left for the next run; never listed in SHA256SUMS, never a reason to fail this one
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
