import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from '../job/job-key.js';
import { kernelRecordSchema, recordArtifacts, type Artifact, type KernelRecord } from '../job/job-payload.js';

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * One result in the store: a job's record and the blobs it refers to, found by the job's key.
 * `digest` is the sha256 of the canonical JSON of everything else, so a torn or edited entry
 * file is told apart from a good one (a miss, never a result). Pure.
 */
export const storeEntrySchema = z.object({
  schemaVersion: z.literal(1),
  jobKey: z.string().regex(SHA256),
  record: kernelRecordSchema,
  storedAt: z.string().max(64),
  digest: z.string().regex(SHA256),
});
export type StoreEntry = z.output<typeof storeEntrySchema>;

export function entryDigest(entry: Omit<StoreEntry, 'digest'>): string {
  const { jobKey, record, schemaVersion, storedAt } = entry;
  return createHash('sha256')
    .update(`kfarm-store-v1\n${canonicalJson({ jobKey, record, schemaVersion, storedAt })}`)
    .digest('hex');
}

export function makeEntry(jobKey: string, record: KernelRecord, storedAt: Date): StoreEntry {
  const body = { schemaVersion: 1 as const, jobKey, record, storedAt: storedAt.toISOString() };
  return { ...body, digest: entryDigest(body) };
}

/** The entry in a file's text, or why it cannot be used (for the log; the caller treats it as a miss). */
export function parseEntry(text: string, expectedKey: string): { entry: StoreEntry } | { invalid: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { invalid: 'not JSON (torn write?)' };
  }
  const parsed = storeEntrySchema.safeParse(json);
  if (!parsed.success) return { invalid: `does not fit the entry schema: ${parsed.error.issues[0]?.message ?? ''}` };
  const entry = parsed.data;
  if (entry.jobKey !== expectedKey) return { invalid: 'names another job' };
  // the digest is over what was written; the schema's cleaning must not change a good record
  if (entryDigest(entry) !== entry.digest) return { invalid: 'digest mismatch (corrupt or edited)' };
  return { entry };
}

/** The blobs an entry needs, each once. */
export function entryBlobs(record: KernelRecord): Artifact[] {
  const seen = new Map<string, Artifact>();
  for (const a of recordArtifacts(record)) seen.set(a.sha256, a);
  return [...seen.values()];
}
