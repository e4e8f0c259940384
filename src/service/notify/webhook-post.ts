import http from 'node:http';
import https from 'node:https';
import { KfarmError, describeError } from '../../errors/kfarm-error.js';

/** how much of a receiver's answer is read (for the log); the rest is dropped */
const MAX_ANSWER_BYTES = 2048;

/** One attempt's outcome when the receiver took the event (2xx). */
export interface Delivered {
  status: number;
}

/**
 * POSTs one attempt and resolves once the receiver answered 2xx and its answer ended. Anything
 * else throws: another status (redirects are not followed: the URL is the configured one),
 * a connection error, or no complete answer within timeoutMs, after which the request is
 * aborted so a hanging receiver holds neither a socket nor the worker. `signal` aborts it too
 * (the notifier closing). No keep-alive: a pooled socket would hold the process after close.
 */
export function postWebhook(url: URL, headers: Record<string, string>, body: string, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<Delivered> {
  const where = url.origin; // never the path or query: receivers put their own secrets there
  return new Promise<Delivered>((resolve, reject) => {
    const controller = new AbortController();
    let timedOut = false;
    // settles the attempt itself, not only through the abort's events: whatever state the
    // request is in, the attempt ends at timeoutMs
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
      fail(new Error('timed out'));
    }, opts.timeoutMs);
    const onOuterAbort = () => {
      controller.abort();
      fail(new Error('aborted'));
    };
    opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
    if (opts.signal?.aborted) controller.abort();
    let settled = false;
    const done = (err: Error | undefined, value?: Delivered) => {
      if (settled) return; // an abort mid-answer errors both the request and the response
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onOuterAbort);
      if (err) reject(err);
      else resolve(value!);
    };
    const request = (url.protocol === 'https:' ? https : http).request(url, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)), connection: 'close', 'user-agent': 'kfarm-webhook' },
      agent: false,
      signal: controller.signal,
    });
    const fail = (err: Error) => {
      const why = timedOut ? `no answer within ${opts.timeoutMs} ms (request aborted)` : opts.signal?.aborted ? 'the notifier is closing (request aborted)' : describeError(err);
      done(new KfarmError('JOB_FAILED', `webhook ${where}: ${why}`, { context: { url: where }, cause: err }));
    };
    request.on('error', fail);
    request.on('response', (response) => {
      const status = response.statusCode ?? 0;
      let answer = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        if (answer.length < MAX_ANSWER_BYTES) answer += chunk.slice(0, MAX_ANSWER_BYTES - answer.length);
      });
      response.on('end', () => {
        if (status >= 200 && status < 300) done(undefined, { status });
        else
          done(
            new KfarmError('JOB_FAILED', `webhook ${where} answered ${status}${answer.trim() ? `: ${answer.trim().slice(0, 200)}` : ''}`, {
              context: { url: where, status },
            }),
          );
      });
      response.on('error', fail);
    });
    request.end(body);
  });
}
