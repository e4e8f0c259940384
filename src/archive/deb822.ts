/**
 * Debian control-file stanzas (deb822), as in the archive's Packages and Release files:
 * `Field: value` lines, continuation lines starting with a space or tab, stanzas separated by
 * blank lines. Field names are case-insensitive, so they are kept lower-cased.
 */
export type Stanza = ReadonlyMap<string, string>;

export function parseStanzas(text: string): Stanza[] {
  const stanzas: Stanza[] = [];
  let current = new Map<string, string>();
  let last: string | undefined;
  const flush = () => {
    if (current.size > 0) stanzas.push(current);
    current = new Map();
    last = undefined;
  };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') {
      flush();
      continue;
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (last !== undefined) current.set(last, `${current.get(last) ?? ''}\n${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue; // not a field: ignored, as apt does with garbage
    last = line.slice(0, colon).trim().toLowerCase();
    current.set(last, line.slice(colon + 1).trim());
  }
  flush();
  return stanzas;
}

/**
 * Keeps, from a stream of lines, only the stanzas whose Package name passes `keep`, as text.
 * A main Packages index is ~45 MB; the kernel stanzas are ~30 KB of it.
 */
export async function keepStanzas(lines: AsyncIterable<string>, keep: (pkg: string) => boolean): Promise<string> {
  const kept: string[] = [];
  let stanza: string[] = [];
  const flush = () => {
    const first = stanza[0];
    if (first !== undefined && /^package:/i.test(first) && keep(first.slice(first.indexOf(':') + 1).trim())) kept.push(stanza.join('\n'));
    stanza = [];
  };
  for await (const line of lines) {
    if (line.trim() === '') flush();
    else stanza.push(line);
  }
  flush();
  return kept.length > 0 ? `${kept.join('\n\n')}\n` : '';
}

/** The packages whose stanzas kernel discovery (and the image builder) needs. */
export const isKernelBuildPackage = (pkg: string): boolean => /^linux-(headers|kbuild|compiler)-/.test(pkg);
