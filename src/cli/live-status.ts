import { createLogUpdate } from 'log-update';

/**
 * Progress on one stream: permanent lines, and on a terminal one status line redrawn in place
 * under them (log-update erases and rewrites it). Off a terminal (a pipe, a CI log) the status
 * is dropped and lines are written plainly: no escape sequence ever reaches a file.
 */
export interface LiveStatus {
  /** a permanent line; on a terminal it goes above the status, which is drawn again under it */
  line: (text: string) => void;
  /** the status line, redrawn in place on a terminal at most every throttleMs; ignored off one */
  status: (text: string) => void;
  /** clears the status; lines after it are written plainly. Safe to call more than once. */
  done: () => void;
  readonly tty: boolean;
}

export interface LiveStatusOptions {
  throttleMs?: number;
  now?: () => number;
}

export function liveStatus(stream: NodeJS.WriteStream, options: LiveStatusOptions = {}): LiveStatus {
  const tty = stream.isTTY === true;
  if (!tty) {
    return { tty, line: (text) => void stream.write(`${text}\n`), status: () => undefined, done: () => undefined };
  }
  const throttleMs = options.throttleMs ?? 100;
  const now = options.now ?? Date.now;
  // A pseudo-terminal without a window size (script(1) fed by a pipe) reports 0 columns, which
  // log-update would wrap at; a sane width instead, and the status cut to one row of it.
  const width = () => (stream.columns > 0 ? stream.columns : 100);
  const draw = createLogUpdate(
    {
      get columns() {
        return width();
      },
      get rows() {
        return stream.rows > 0 ? stream.rows : 24;
      },
      write: (chunk: string) => stream.write(chunk),
    } as unknown as NodeJS.WriteStream,
    // the cursor stays visible: a hidden one would outlive a crash or a second Ctrl-C
    { showCursor: true },
  );
  let current: string | undefined; // the status on screen
  let pending: string | undefined; // the newest status, not drawn yet
  let drawnAt = Number.NEGATIVE_INFINITY;
  let timer: NodeJS.Timeout | undefined;
  let ended = false;

  const fit = (text: string) => {
    const max = Math.max(20, width() - 1);
    return text.length > max ? `${text.slice(0, max - 1)}…` : text;
  };
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending === undefined || ended) return;
    current = pending;
    pending = undefined;
    drawnAt = now();
    draw(fit(current));
  };

  return {
    tty,
    line: (text) => {
      if (ended || current === undefined) {
        stream.write(`${text}\n`);
        return;
      }
      draw.clear();
      stream.write(`${text}\n`);
      // the status again under the new line, the newest one if a redraw was waiting
      pending ??= current;
      current = undefined;
      flush();
    },
    status: (text) => {
      if (ended) return;
      pending = text;
      const wait = drawnAt + throttleMs - now();
      if (wait <= 0) flush();
      else timer ??= setTimeout(flush, wait).unref();
    },
    done: () => {
      if (ended) return;
      ended = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (current !== undefined) draw.clear();
      draw.done();
      current = undefined;
      pending = undefined;
    },
  };
}
