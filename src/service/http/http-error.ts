import { KfarmError, describeError, type ErrorCode } from '../../errors/kfarm-error.js';

/** An answer other than success, as JSON `{ error, code?, hint? }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly hint?: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** status of a KfarmError seen by a client: its own input is 4xx (what `kfarm build` exits 2 for), the farm's trouble 503 */
export function httpErrorOf(err: unknown, exitCodeFor: (code: ErrorCode) => number): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof KfarmError) {
    if (err.code === 'SOURCE_TOO_LARGE') return new HttpError(413, err.message, err.hint, err.code);
    const exit = exitCodeFor(err.code);
    return new HttpError(exit === 2 ? 400 : 503, describeError(err), err.hint, err.code);
  }
  return new HttpError(500, `internal error: ${describeError(err)}`, 'This is a bug in kfarm: please report it with the service log.');
}
