/**
 * PACKAGE_NAME and PACKAGE_VERSION read from a dkms.conf without running it. dkms.conf is bash
 * and dkms sources it; kfarm never runs a file from a tarball on the host, so it reads plain
 * assignments only (`NAME=value`, `NAME="value"`, `NAME='value'`, the last one wins, as in bash).
 * A value built from expansions (`$...`, backquotes) cannot be known without running it: null.
 * Pure.
 */
export interface ConfNames {
  name: string | null;
  version: string | null;
}

const ASSIGNMENT = /^\s*(PACKAGE_NAME|PACKAGE_VERSION)=(.*)$/;

export function readConfNames(conf: string): ConfNames {
  const found: ConfNames = { name: null, version: null };
  for (const line of conf.split('\n')) {
    const m = ASSIGNMENT.exec(line);
    if (!m) continue;
    const value = literalValue(m[2] ?? '');
    if (m[1] === 'PACKAGE_NAME') found.name = value;
    else found.version = value;
  }
  return found;
}

/** The value of a shell word when it is a literal (optionally quoted, optionally followed by a comment), else null. */
function literalValue(raw: string): string | null {
  const text = raw.trim();
  const m = /^(?:"([^"$`\\]*)"|'([^']*)'|([^\s"'$`\\;&|<>()#]*))\s*(?:#.*)?;?\s*$/.exec(text);
  if (!m) return null;
  return m[1] ?? m[2] ?? m[3] ?? null;
}
