import path from 'node:path';
import { KfarmError } from '../errors/kfarm-error.js';

/**
 * The host path `dir/part/part...`, where each part must be one plain path segment (no `/`,
 * not `.` or `..`, no NUL), so the result always lies inside `dir`. Names in
 * those parts come from builds and are validated where they enter (dkms/names.ts); this is
 * the second lock on the door, so that a validation gap can never become a write outside
 * --out.
 */
export function insideDir(dir: string, ...parts: string[]): string {
  const root = path.resolve(dir);
  const target = path.resolve(root, ...parts);
  const rel = path.relative(root, target);
  const bad = parts.some((p) => p === '' || p === '.' || p === '..' || /[/\\\0]/.test(p)) || rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel);
  if (bad) {
    throw new KfarmError('UNSAFE_ARCHIVE', `refused to write ${JSON.stringify(parts.join('/'))}: it is not a file inside ${root}`, {
      context: { dir: root, name: parts.join('/') },
      hint: 'A name that came back from a build leads out of the output directory; nothing was written there. Please report this: such names should have been refused earlier.',
    });
  }
  return target;
}
