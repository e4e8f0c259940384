import type http from 'node:http';
import { z } from 'zod';
import { HttpError } from './http-error.js';

/**
 * The request's body, refused (413) as soon as it passes `max` bytes: a declared length over the
 * cap is refused before a byte is read, an endless chunked upload when the running count passes
 * it; and a body that stops arriving is cut off after `idleMs` (408).
 */
export async function readBody(req: http.IncomingMessage, max: number, idleMs = 60_000): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > max) throw tooLarge(max);
  const chunks: Buffer[] = [];
  let total = 0;
  return new Promise<Buffer>((resolve, reject) => {
    const idle = () => {
      req.destroy();
      reject(new HttpError(408, `the request body stopped arriving for ${Math.round(idleMs / 1000)} s`));
    };
    let timer = setTimeout(idle, idleMs);
    req.on('data', (chunk: Buffer) => {
      total += chunk.length;
      clearTimeout(timer);
      if (total > max) {
        req.removeAllListeners('data');
        req.resume(); // drained, not kept: the 413 can still be read by the client
        return reject(tooLarge(max));
      }
      timer = setTimeout(idle, idleMs);
      chunks.push(chunk);
    });
    req.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(new HttpError(400, `the request body could not be read: ${err.message}`));
    });
  });
}

function tooLarge(max: number): HttpError {
  return new HttpError(413, `the request body is larger than ${max} bytes`, 'Send less: a module source is capped as kfarm build caps a source dir.');
}

/** A JSON body checked against its schema: anything else is a 400 that says which field. */
export async function readJson<T extends z.ZodTypeAny>(req: http.IncomingMessage, schema: T, max = 64 * 1024): Promise<z.output<T>> {
  const body = await readBody(req, max);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8') || '{}');
  } catch (err) {
    throw new HttpError(400, `the body is not JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new HttpError(400, `the body is not as expected: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`);
  }
  return parsed.data as z.output<T>;
}
