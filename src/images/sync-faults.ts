import { inspect } from 'node:util';
import type { Logger } from 'pino';

/**
 * Pure (but for the logger wrapper): how `kfarm images sync` tells a full disk from a kernel
 * that failed on its own. A full engine disk fails every later build too, so sync stops
 * starting kernels once it sees one; any other failure is that kernel's alone.
 */
const NO_SPACE = /no space left on device|\bENOSPC\b|\(28: No space/i;

export function saysNoSpace(text: string): boolean {
  return NO_SPACE.test(text);
}

/** The messages of an error and of its causes, joined: the engine's words are often a cause deep. */
export function errorChainText(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    // a cause that is neither an Error nor text (an engine's error body) is shown with its
    // fields: String() would give "[object Object]" and hide the words looked for
    parts.push(current instanceof Error ? current.message : typeof current === 'string' ? current : inspect(current, { breakLength: Infinity }));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(' | ');
}

/**
 * The image builder logs each build output line at debug level with `{ kernel }` or `{ image }`,
 * and keeps only the last few lines in its error: apt's "Write error - write (28: No space left
 * on device)" is often further up (then "Sub-process /usr/bin/dpkg returned an error code").
 * This logger passes every call on unchanged and shows each debug line to `seen` first.
 */
export function watchBuildLines(logger: Logger, seen: (key: string, line: string) => void): Logger {
  return new Proxy(logger, {
    get(target, prop, receiver) {
      if (prop !== 'debug') return Reflect.get(target, prop, receiver) as unknown;
      return (obj: unknown, msg?: unknown, ...rest: unknown[]) => {
        if (obj && typeof obj === 'object' && typeof msg === 'string') {
          const bindings = obj as { kernel?: unknown; image?: unknown };
          const key = typeof bindings.kernel === 'string' ? bindings.kernel : typeof bindings.image === 'string' ? bindings.image : undefined;
          if (key !== undefined) seen(key, msg);
        }
        // the rule sees no change of type, but tsc does: without the cast .call() takes one of
        // pino's LogFn overloads, which refuses unknown arguments
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
        return (target.debug as (...args: unknown[]) => void).call(target, obj, msg, ...rest);
      };
    },
  });
}
