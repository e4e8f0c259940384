import { KfarmError } from '../errors/kfarm-error.js';
import type { JobPayload, KernelRecord } from './job-payload.js';

/**
 * A worker's record answers one job; the coordinator knows which. The kernel, arch and image
 * of a result are the job's, never the record's: a record that names another one was meant
 * for another job (or planted) and is refused. What the record may add (verdict, modules,
 * names from dkms.conf) is checked by its schema.
 */
export function acceptRecord(payload: JobPayload, record: KernelRecord): KernelRecord {
  const disagree = (['kernel', 'arch', 'image'] as const).filter((k) => record[k] !== payload[k]);
  if (disagree.length > 0) {
    throw new KfarmError(
      'RECORD_REJECTED',
      `the result for ${payload.kernel} names another job (${disagree.map((k) => `${k} ${JSON.stringify(record[k])}`).join(', ')}): refused`,
      {
        context: { kernel: payload.kernel, image: payload.image, worker: record.worker },
        hint: 'A worker returned a result for another kernel or image; it is built again. If this repeats, check the workers that share this Redis.',
      },
    );
  }
  return { ...record, kernel: payload.kernel, arch: payload.arch, image: payload.image };
}
