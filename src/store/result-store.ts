import { createHash, randomBytes } from 'node:crypto';
import { open, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { KfarmError } from '../errors/kfarm-error.js';
import { tryLockFile, type FileLock } from '../process/file-lock.js';
import { mapLimit } from '../util/map-limit.js';
import type { KernelRecord } from '../job/job-payload.js';
import { planEviction, type EntryUse, type EvictionPlan } from './eviction-plan.js';
import { entryBlobs, makeEntry, parseEntry } from './store-entry.js';
import { makeDirs } from '../util/make-dir.js';

const HEX64 = /^[0-9a-f]{64}$/;
/** stats and reads in flight at once when the store is sized: 30,000 files took 0.9 s one by one, 0.17 s so */
const STAT_PARALLEL = 64;

export interface StoredResult {
  record: KernelRecord;
  files: Map<string, Buffer>;
}

export interface StoreListing {
  key: string;
  record: KernelRecord | undefined;
  /** bytes of its blobs plus its entry file (shared blobs count in each entry that uses them) */
  bytes: number;
  lastUsed: Date;
}

/**
 * Results on disk under the state dir, by content: `blobs/ab/<sha256>` (modules, logs),
 * `entries/ab/<job key>.json` (a record pointing at its blobs). Written atomically (temp file,
 * fsync, rename), so a reader sees a whole file or none; read back checked by hash, so a
 * corrupt or partial one is a miss (removed, the job built again), never a result. Bounded:
 * least recently used entries go first, and an entry's mtime is its last use (set on every
 * hit; blobs are never rewritten to say so). Writers and eviction take one lock file, so two
 * kfarm processes can share a store; a reader needs none (what vanishes under it is a miss).
 */
export class ResultStore {
  constructor(
    readonly dir: string,
    readonly maxBytes: number,
    private readonly logger?: Logger,
  ) {}

  /** The store under a state dir. */
  static under(stateDir: string, maxBytes: number, logger?: Logger): ResultStore {
    return new ResultStore(path.join(stateDir, 'results'), maxBytes, logger);
  }

  /** A job's result with its blobs, each checked against its sha256; undefined when absent or not intact. */
  async get(jobKey: string): Promise<StoredResult | undefined> {
    const file = this.entryPath(jobKey);
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    const parsed = parseEntry(text, jobKey);
    if ('invalid' in parsed) {
      await this.drop(jobKey, `entry ${parsed.invalid}`);
      return undefined;
    }
    const files = new Map<string, Buffer>();
    for (const blob of entryBlobs(parsed.entry.record)) {
      const data = await readFile(this.blobPath(blob.sha256)).catch(() => undefined);
      if (data === undefined) {
        await this.drop(jobKey, `blob ${blob.sha256.slice(0, 12)} is missing`);
        return undefined;
      }
      if (data.length !== blob.size || sha256(data) !== blob.sha256) {
        await rm(this.blobPath(blob.sha256), { force: true });
        await this.drop(jobKey, `blob ${blob.sha256.slice(0, 12)} is corrupt`);
        return undefined;
      }
      files.set(blob.sha256, data);
    }
    const now = new Date();
    await utimes(file, now, now).catch(() => undefined);
    return { record: parsed.entry.record, files };
  }

  /**
   * Keeps a result: its blobs (taken from `files`, each checked against the record's sha256),
   * then its entry. Evicts down to the bound unless told not to (a run evicts once at its end).
   */
  async put(jobKey: string, record: KernelRecord, files: ReadonlyMap<string, Buffer>, opts: { evict?: boolean } = {}): Promise<void> {
    if (!HEX64.test(jobKey)) throw new Error(`ResultStore.put: not a job key: ${jobKey}`);
    const blobs = entryBlobs(record).map((b) => {
      const data = files.get(b.sha256);
      if (!data || data.length !== b.size || sha256(data) !== b.sha256) {
        throw new Error(`ResultStore.put: the result of job ${jobKey.slice(0, 12)} lacks blob ${b.sha256.slice(0, 12)} or it does not match its sha256`);
      }
      return { ...b, data };
    });
    await this.locked(async () => {
      for (const b of blobs) {
        const target = this.blobPath(b.sha256);
        const held = await stat(target).catch(() => undefined);
        if (held?.size === b.size) continue; // checked on every read: a bad one is a miss then
        await this.writeAtomic(target, b.data);
      }
      await this.writeAtomic(this.entryPath(jobKey), Buffer.from(JSON.stringify(makeEntry(jobKey, record, new Date()))));
      if (opts.evict !== false) await this.evictLocked(this.maxBytes);
    });
  }

  /** Drops least recently used entries (and blobs no entry needs) until the store fits `maxBytes`. */
  async evict(maxBytes = this.maxBytes): Promise<EvictionPlan> {
    return this.locked(() => this.evictLocked(maxBytes));
  }

  /** Every entry, newest use first; an unreadable one is listed without a record. */
  async list(): Promise<StoreListing[]> {
    const { entries, blobSizes, records } = await this.scan();
    return entries
      .map((e) => ({
        key: e.key,
        record: records.get(e.key),
        bytes: e.bytes + [...new Set(e.blobs)].reduce((a, b) => a + (blobSizes.get(b) ?? 0), 0),
        lastUsed: new Date(e.lastUsed),
      }))
      .sort((a, b) => b.lastUsed.getTime() - a.lastUsed.getTime());
  }

  /** The store's size on disk: each blob once, plus every entry file. */
  async size(): Promise<number> {
    const { entries, blobSizes } = await this.scan();
    return [...blobSizes.values()].reduce((a, b) => a + b, 0) + entries.reduce((a, e) => a + e.bytes, 0);
  }

  /**
   * Re-hashes every blob and checks every entry; removes what is corrupt (and the entries that
   * need a removed or missing blob). Returns what it removed, for the report.
   */
  async verify(): Promise<{ entries: number; blobs: number; corrupt: string[] }> {
    return this.locked(async () => {
      const corrupt: string[] = [];
      const bad = new Set<string>();
      const blobNames = await this.listFiles('blobs');
      for (const { name, file } of blobNames) {
        const data = await readFile(file).catch(() => undefined);
        if (!HEX64.test(name) || data === undefined || sha256(data) !== name) {
          bad.add(name);
          corrupt.push(`blob ${name.slice(0, 12)}: its content does not match its sha256`);
          await rm(file, { force: true });
        }
      }
      const held = new Set(blobNames.map((b) => b.name).filter((b) => !bad.has(b)));
      const entryFiles = await this.listFiles('entries');
      for (const { name, file } of entryFiles) {
        const key = name.replace(/\.json$/, '');
        const parsed = parseEntry(await readFile(file, 'utf8').catch(() => ''), key);
        const why =
          'invalid' in parsed
            ? `entry ${parsed.invalid}`
            : entryBlobs(parsed.entry.record).find((b) => !held.has(b.sha256))
              ? 'needs a blob that is corrupt or missing'
              : undefined;
        if (why !== undefined) {
          corrupt.push(`entry ${key.slice(0, 12)}: ${why}`);
          await rm(file, { force: true });
        }
      }
      return { entries: entryFiles.length, blobs: blobNames.length, corrupt };
    });
  }

  private async evictLocked(maxBytes: number): Promise<EvictionPlan> {
    // sizes from stat alone first: reading every entry is needed only when something must go
    const quick = await this.statSize();
    if (quick <= maxBytes) {
      await this.sweepTemp();
      return { entries: [], blobs: [], before: quick, after: quick };
    }
    const { entries, blobSizes } = await this.scan();
    const plan = planEviction(entries, blobSizes, maxBytes);
    for (const key of plan.entries) await rm(this.entryPath(key), { force: true });
    for (const blob of plan.blobs) await rm(this.blobPath(blob), { force: true });
    if (plan.entries.length > 0 || plan.blobs.length > 0) {
      this.logger?.info({ entries: plan.entries.length, blobs: plan.blobs.length, before: plan.before, after: plan.after }, 'result store: evicted the least recently used');
    }
    await this.sweepTemp();
    return plan;
  }

  private async statSize(): Promise<number> {
    const files = [...(await this.listFiles('blobs')), ...(await this.listFiles('entries'))];
    const sizes = await mapLimit(files, STAT_PARALLEL, async ({ file }) => (await stat(file).catch(() => undefined))?.size ?? 0);
    return sizes.reduce((a, b) => a + b, 0);
  }

  /** Every entry's use and blobs, and every blob's size. Entries that cannot be read count with no blobs (verify removes them). */
  private async scan(): Promise<{ entries: EntryUse[]; blobSizes: Map<string, number>; records: Map<string, KernelRecord> }> {
    const blobSizes = new Map<string, number>();
    const blobFiles = await this.listFiles('blobs');
    const sizes = await mapLimit(blobFiles, STAT_PARALLEL, async ({ file }) => (await stat(file).catch(() => undefined))?.size);
    for (const [i, { name }] of blobFiles.entries()) {
      const size = sizes[i];
      if (size !== undefined) blobSizes.set(name, size);
    }
    const entries: EntryUse[] = [];
    const records = new Map<string, KernelRecord>();
    const entryFiles = await this.listFiles('entries');
    const read = await mapLimit(entryFiles, STAT_PARALLEL, ({ file }) => Promise.all([stat(file).catch(() => undefined), readFile(file, 'utf8').catch(() => undefined)]));
    for (const [i, { name }] of entryFiles.entries()) {
      const key = name.replace(/\.json$/, '');
      const [s, text] = read[i] ?? [];
      if (!s || text === undefined) continue;
      const parsed = parseEntry(text, key);
      const blobs = 'entry' in parsed ? entryBlobs(parsed.entry.record).map((b) => b.sha256) : [];
      if ('entry' in parsed) records.set(key, parsed.entry.record);
      entries.push({ key, lastUsed: s.mtimeMs, bytes: s.size, blobs });
    }
    return { entries, blobSizes, records };
  }

  private async listFiles(kind: 'blobs' | 'entries'): Promise<Array<{ name: string; file: string }>> {
    const root = path.join(this.dir, kind);
    const out: Array<{ name: string; file: string }> = [];
    for (const fan of await readdir(root).catch(() => [] as string[])) {
      for (const name of await readdir(path.join(root, fan)).catch(() => [] as string[])) out.push({ name, file: path.join(root, fan, name) });
    }
    return out;
  }

  private async drop(jobKey: string, why: string): Promise<void> {
    this.logger?.warn({ job: jobKey.slice(0, 12), why }, 'result store: entry not intact; removed, the job is built again');
    await rm(this.entryPath(jobKey), { force: true });
  }

  private async writeAtomic(target: string, data: Buffer): Promise<void> {
    const tmpDir = path.join(this.dir, 'tmp');
    await makeDirs(tmpDir);
    await makeDirs(path.dirname(target));
    const tmp = path.join(tmpDir, `${process.pid}-${randomBytes(6).toString('hex')}`);
    const handle = await open(tmp, 'w', 0o644);
    try {
      await handle.writeFile(data);
      // on disk before its name is: an entry never points at a blob a crash could truncate
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
  }

  /** Temp files of writers that died (older than an hour: a live writer renames within seconds). */
  private async sweepTemp(): Promise<void> {
    const tmpDir = path.join(this.dir, 'tmp');
    for (const name of await readdir(tmpDir).catch(() => [] as string[])) {
      const s = await stat(path.join(tmpDir, name)).catch(() => undefined);
      if (s && Date.now() - s.mtimeMs > 3600_000) await rm(path.join(tmpDir, name), { force: true });
    }
  }

  private async locked<T>(work: () => Promise<T>): Promise<T> {
    await makeDirs(this.dir);
    const lockFile = path.join(this.dir, 'lock');
    const deadline = Date.now() + 60_000;
    let lock: FileLock | undefined;
    while (!(lock = await tryLockFile(lockFile, String(process.pid)))) {
      if (Date.now() > deadline) {
        throw new KfarmError('COMMAND_FAILED', `the result store ${this.dir} stayed locked for a minute`, { hint: 'Another kfarm process holds it; try again when it is done.' });
      }
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 20));
    }
    try {
      return await work();
    } finally {
      await lock.release();
    }
  }

  private blobPath(sha: string): string {
    if (!HEX64.test(sha)) throw new Error(`ResultStore: not a sha256: ${sha}`);
    return path.join(this.dir, 'blobs', sha.slice(0, 2), sha);
  }

  private entryPath(jobKey: string): string {
    if (!HEX64.test(jobKey)) throw new Error(`ResultStore: not a job key: ${jobKey}`);
    return path.join(this.dir, 'entries', jobKey.slice(0, 2), `${jobKey}.json`);
  }
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
