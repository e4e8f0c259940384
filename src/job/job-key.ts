import { createHash } from 'node:crypto';
import type { JobPayload } from './job-payload.js';

/**
 * A job's id is a hash of everything that decides its result: the source, the kernel and
 * its image, the driver, the options, and for a module with BUILD_DEPENDS its dependencies'
 * names, versions and Module.symvers hashes (`dependsOn`). The same work is never queued twice, and a finished
 * result is found again by the next build that asks for it.
 */
export function jobKey(payload: JobPayload): string {
  const { buildId: _ignored, schemaVersion, ...decisive } = payload;
  return createHash('sha256')
    .update(`v${schemaVersion}\n${canonicalJson(decisive)}`)
    .digest('hex');
}

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
