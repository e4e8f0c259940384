import { HttpTimeoutError, request } from './http-client.js';
import { mapLimit } from '../util/map-limit.js';

/** Whether a package file can really be downloaded: indexes can name files the pool no longer has. */
export type Fetchability = { fetchable: true } | { fetchable: false; reason: string };

export interface FetchCheck {
  url: string;
  /** the index's Size: a file of another length is not the one the index names */
  size: number;
}

/**
 * HEAD of each URL, `concurrency` at a time, each bounded by `timeoutMs`. Never throws: a
 * failure is that candidate's reason, so one gone file does not fail a whole discovery.
 */
export async function checkFetchable(checks: readonly FetchCheck[], options: { concurrency?: number; timeoutMs?: number } = {}): Promise<Fetchability[]> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  return mapLimit(checks, options.concurrency ?? 16, async (check): Promise<Fetchability> => {
    try {
      const res = await request(check.url, { method: 'HEAD', timeoutMs });
      if (res.status !== 200) return { fetchable: false, reason: `HTTP ${res.status}` };
      const length = res.headers['content-length'];
      if (length !== undefined && check.size > 0 && Number(length) !== check.size) {
        return { fetchable: false, reason: `the archive serves ${length} bytes, the index says ${check.size}` };
      }
      return { fetchable: true };
    } catch (err) {
      if (err instanceof HttpTimeoutError) return { fetchable: false, reason: err.message };
      return { fetchable: false, reason: networkReason(err) };
    }
  });
}

/** A socket error's code (ECONNREFUSED, ENOTFOUND) with its message, or the message. */
export function networkReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = 'code' in err ? String((err as { code: unknown }).code) : undefined;
  return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}
