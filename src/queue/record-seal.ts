import { createHmac, timingSafeEqual } from 'node:crypto';
import { canonicalJson } from '../job/job-key.js';

/**
 * Integrity seals on what crosses Redis: an HMAC-SHA256, with the farm key (held outside Redis
 * and outside build containers), over what is sealed, the job it belongs to and the value's
 * canonical JSON. Whoever can write to Redis but lacks the key cannot plant a result or a job.
 * The kind keeps one kind's seal from passing for another's (a payload's for a record's).
 * Pure: the key is given.
 */
export type SealKind = 'payload' | 'record' | 'attempt' | 'verify-payload' | 'verify-result';

export function seal(key: Buffer, kind: SealKind, jobId: string, value: unknown): string {
  return createHmac('sha256', key)
    .update(`kfarm-seal-v1\n${kind}\n${jobId}\n${canonicalJson(value)}`)
    .digest('hex');
}

/** false for a missing, malformed or wrong seal; compared in constant time */
export function verifySeal(key: Buffer, kind: SealKind, jobId: string, value: unknown, claimed: unknown): boolean {
  if (typeof claimed !== 'string' || !/^[0-9a-f]{64}$/.test(claimed)) return false;
  return timingSafeEqual(Buffer.from(seal(key, kind, jobId, value), 'hex'), Buffer.from(claimed, 'hex'));
}
