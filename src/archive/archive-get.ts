import { KfarmError } from '../errors/kfarm-error.js';
import { networkReason } from './fetchability.js';
import { HttpTimeoutError, request, type HttpResponse } from './http-client.js';

/** `context.reason` of the error an unreachable archive (network, refused, HTTP 5xx) raises */
export const ARCHIVE_UNREACHABLE = 'archive-unreachable';

/** One GET from the archive; a network failure or timeout is the archive-unreachable error. */
export async function archiveGet(url: string, timeoutMs: number): Promise<HttpResponse> {
  try {
    return await request(url, { timeoutMs });
  } catch (err) {
    throw archiveUnreachable(url, err instanceof HttpTimeoutError ? err.message : networkReason(err), err);
  }
}

export function archiveUnreachable(url: string, why: string, cause?: unknown): KfarmError {
  return new KfarmError('COMMAND_FAILED', `the Debian archive is unreachable: ${url}: ${why}`, {
    // callers that can say more (sync: what it leaves untouched) recognise it by this
    context: { url, reason: ARCHIVE_UNREACHABLE },
    cause,
    hint: 'Check the network (and proxy) from this machine to deb.debian.org over http, then run the command again.',
  });
}
