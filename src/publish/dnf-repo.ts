import { copyFile, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { KfarmError } from '../errors/kfarm-error.js';
import { hashFile } from '../packaging/checksums.js';
import { lockNote, tryLockFile, type FileLock } from '../process/file-lock.js';
import { makeDirs } from '../util/make-dir.js';
import { writeAtomic } from '../util/write-atomic.js';
import { classifyDnfRepo, DNF_LOCK, DNF_MANIFEST, DNF_STAGE_PREFIX, nevraOf, PACKAGES_DIR, serializeDnfManifest, type DnfManifest, type PublishedRpm } from './dnf-manifest.js';
import { readDnfCandidates } from './dnf-out-dirs.js';
import { planDnfPublish, type DnfPlan } from './dnf-plan.js';
import { makeRepodata, swapInRepodata } from './dnf-repodata.js';
import { asFullDisk } from './full-disk.js';
import { armorPublicKey, DNF_KEY_FILE, DNF_REPO_ID, dnfRepoFile } from './dnf-repo-file.js';
import { checkRpmSignatures, signRpms, type RpmSigningKey } from './dnf-rpm.js';
import { openRepoKey, REPO_KEY_PASSPHRASE_ENV, type RepoKey, type RepoKeyOptions } from './repo-key.js';

/**
 * Publishes out dirs' kmod and dkms RPMs to a DNF/YUM repository (a directory of static files):
 * each RPM signed with the repository key (rpmsign), repodata by createrepo_c, repomd.xml
 * detach-signed (repomd.xml.asc), the armored public key and a `.repo` file for clients beside
 * them. Checked first, written second: the out dirs' packages, the key (it signs a probe) and
 * the directory (kfarm's, or new) are checked before anything is written; a published version
 * with other bytes refuses the whole publish. Then, under the repository's lock: new packages
 * signed in a stage and moved into Packages/, kfarm-dnf.json, repodata swapped in last, and only
 * then packages `keep` dropped are deleted. A reader never sees an index naming a missing file.
 */
export interface DnfPublishOptions {
  outDirs: readonly string[];
  repoDir: string;
  key: RepoKeyOptions;
  /** keep the newest N versions of each module; default: every version */
  keep?: number;
  /** where clients reach the repository, for the `.repo` file; default file://<repoDir> */
  baseUrl?: string;
  /** the `.repo` file's section (and file) name; default kfarm */
  repoId?: string;
  /** how long to wait for another publish to the same repository; default 10 minutes */
  lockTimeoutMs?: number;
  logger: Logger;
}

export interface DnfPublishResult {
  plan: DnfPlan;
  /** the repository's files, relative to it */
  added: string[];
  /** deleted now: what the index before this one had dropped already (plan.remove leaves the index now, its files at the next publish) */
  removed: string[];
  repoFile: string;
}

export async function publishDnf(options: DnfPublishOptions): Promise<DnfPublishResult> {
  const repoDir = path.resolve(options.repoDir);
  const log = options.logger.child({ repository: repoDir });
  await inspectRepo(repoDir); // refuses someone else's directory before anything else happens
  const candidates = await readDnfCandidates(options.outDirs);
  let key: RepoKey | undefined;
  let lock: FileLock | undefined;
  try {
    key = await openRepoKey(options.key);
    const signing = rpmSigningKey(key, options.key);
    await makeDirs(repoDir);
    lock = await lockRepo(repoDir, options.lockTimeoutMs ?? 600_000, log);
    const manifest = await inspectRepo(repoDir); // again: another publish may have finished while we waited
    const plan = planDnfPublish({ candidates, manifest, ...(options.keep === undefined ? {} : { keep: options.keep }) });
    log.info({ add: plan.add.length, unchanged: plan.unchanged.length, remove: plan.remove.length, skipped: plan.skipped.length, held: plan.held.length }, 'DNF publish plan');
    // a held dkms RPM (held-dkms.ts): what happened and what to do
    for (const warning of plan.warnings) log.warn(warning);
    const stage = path.join(repoDir, `${DNF_STAGE_PREFIX}${process.pid}`);
    try {
      await rm(stage, { recursive: true, force: true });
      await makeDirs(path.join(stage, 'sign'));
      return await apply(repoDir, stage, plan, key, signing, options, log);
    } catch (err) {
      // a full disk is the environment (FILE_SYSTEM, exit 3), whichever tool ran into it
      throw asFullDisk(err, repoDir);
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
  } finally {
    await lock?.release();
    await key?.close();
  }
}

async function apply(repoDir: string, stage: string, plan: DnfPlan, key: RepoKey, signing: RpmSigningKey, options: DnfPublishOptions, log: Logger): Promise<DnfPublishResult> {
  const publicKey = path.join(stage, 'key.gpg');
  await key.exportPublicKey(publicKey);
  const armored = armorPublicKey(await readFile(publicKey));
  // 1. sign copies in the stage, and check them as a client would, before any is placed
  const signed = plan.add.map((c) => ({ c, staged: path.join(stage, 'sign', path.basename(c.file)) }));
  for (const { c, staged } of signed) await copyFile(c.source, staged);
  await signRpms(
    signed.map((s) => s.staged),
    signing,
  );
  const bad = await checkRpmSignatures(
    signed.map((s) => s.staged),
    armored,
  );
  if (bad.length > 0)
    throw new KfarmError(
      'COMMAND_FAILED',
      `rpm -K refused ${bad.length} package(s) just signed: ${bad
        .slice(0, 3)
        .map((b) => `${path.basename(b.file)} (${b.why})`)
        .join('; ')}`,
      { context: { repository: repoDir } },
    );
  // 2. place them: not in any index yet, so no reader sees them half-written
  await makeDirs(path.join(repoDir, PACKAGES_DIR));
  const added: PublishedRpm[] = [];
  for (const { c, staged } of signed) {
    const { sha256, size } = await hashFile(staged);
    await rename(staged, path.join(repoDir, c.file));
    const { source: _source, sha256: sourceSha256, file, ...id } = c;
    added.push({ ...id, file, sourceSha256, sha256, size });
    log.info({ package: nevraOf(c), file }, 'added');
  }
  // 3. the record of what the repository holds, then the key and the .repo file clients need
  const manifest: DnfManifest = { schemaVersion: 1, kind: 'kfarm-dnf-repository', packages: [...plan.stay, ...added] };
  await writeAtomic(path.join(repoDir, DNF_MANIFEST), serializeDnfManifest(manifest));
  await writeAtomic(path.join(repoDir, DNF_KEY_FILE), Buffer.from(armored));
  const repoId = options.repoId ?? DNF_REPO_ID;
  const repoFile = path.join(repoDir, `${repoId}.repo`);
  await writeAtomic(repoFile, Buffer.from(dnfRepoFile({ id: repoId, baseUrl: options.baseUrl ?? `file://${repoDir}` })));
  // 4. the index, swapped in last
  const staged = await makeRepodata(repoDir, stage, manifest.packages.map((p) => p.file).sort());
  await swapInRepodata(repoDir, staged, (file, out) => key.detachSign(file, out));
  // 5. what neither this index nor the one it replaced names: packages `keep` dropped last time
  // (a reader of the previous repomd.xml may still fetch those dropped now), and any an
  // interrupted publish left
  const named = new Set([...manifest.packages, ...plan.remove].map((p) => path.basename(p.file)));
  const removed: string[] = [];
  for (const name of await readdir(path.join(repoDir, PACKAGES_DIR))) {
    if (named.has(name)) continue;
    await rm(path.join(repoDir, PACKAGES_DIR, name), { force: true });
    removed.push(`${PACKAGES_DIR}/${name}`);
  }
  log.info({ added: added.length, removed: removed.length }, 'DNF repository published');
  return { plan, added: added.map((a) => a.file), removed, repoFile };
}

/** The repository as it is: its manifest, or a refusal if it is not kfarm's (read only). */
async function inspectRepo(repoDir: string): Promise<DnfManifest> {
  const info = await stat(repoDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new KfarmError('BAD_OPTION', `cannot read ${repoDir} (${err.code ?? err.message})`, { context: { repository: repoDir } });
  });
  if (!info) return classifyDnfRepo(repoDir, [], undefined);
  if (!info.isDirectory())
    throw new KfarmError('BAD_OPTION', `${repoDir} is not a directory: not a kfarm DNF repository; nothing was changed`, { context: { repository: repoDir } });
  const entries = await readdir(repoDir);
  const text = entries.includes(DNF_MANIFEST) ? await readFile(path.join(repoDir, DNF_MANIFEST), 'utf8') : undefined;
  return classifyDnfRepo(repoDir, entries, text);
}

/** Waits for the repository's lock: two publishes to one repository run one after the other. */
async function lockRepo(repoDir: string, timeoutMs: number, log: Logger): Promise<FileLock> {
  const file = path.join(repoDir, DNF_LOCK);
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    const lock = await tryLockFile(file, `${process.pid}\n`);
    if (lock) return lock;
    if (!told) {
      log.info({ holder: await lockNote(file) }, 'another publish holds the repository: waiting');
      told = true;
    }
    if (Date.now() > deadline) {
      throw new KfarmError('COMMAND_FAILED', `${repoDir} stayed locked by another publish (pid ${await lockNote(file)}) for ${Math.round(timeoutMs / 1000)} s`, {
        context: { repository: repoDir },
        hint: 'Wait for the other `kfarm publish` to finish, then run this one again.',
      });
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** rpmsign runs gpg itself, so it signs in the gnupg home the repository key was imported into. */
function rpmSigningKey(key: RepoKey, options: RepoKeyOptions): RpmSigningKey {
  const passphrase = options.passphrase ?? process.env[REPO_KEY_PASSPHRASE_ENV];
  return { fingerprint: key.fingerprint, gnupgHome: key.gnupgHome, ...(passphrase ? { passphrase } : {}) };
}
