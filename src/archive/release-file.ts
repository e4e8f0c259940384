import { parseStanzas } from './deb822.js';

/** What an InRelease (or Release) file says: when it was made and each index's SHA256 and size. */
export interface ReleaseFile {
  date: string | undefined;
  codename: string | undefined;
  /** path under dists/<suite>/ → checksum and size */
  sha256: ReadonlyMap<string, { sha256: string; size: number }>;
}

/** Pure. The PGP armour of an InRelease is stripped; the signature is checked elsewhere (gpgv). */
export function parseReleaseFile(text: string): ReleaseFile {
  const body = stripClearsign(text);
  const stanza = parseStanzas(body)[0] ?? new Map<string, string>();
  const sha256 = new Map<string, { sha256: string; size: number }>();
  for (const line of (stanza.get('sha256') ?? '').split('\n')) {
    const [hash, size, file] = line.trim().split(/\s+/);
    if (hash && size && file && /^[0-9a-f]{64}$/.test(hash) && /^\d+$/.test(size)) sha256.set(file, { sha256: hash, size: Number(size) });
  }
  return { date: stanza.get('date'), codename: stanza.get('codename'), sha256 };
}

function stripClearsign(text: string): string {
  if (!text.startsWith('-----BEGIN PGP SIGNED MESSAGE-----')) return text;
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === ''); // blank line ends the armour headers
  const end = lines.findIndex((l) => l.startsWith('-----BEGIN PGP SIGNATURE-----'));
  // dash-escaped lines ("- -----") lose their escape
  return lines
    .slice(start + 1, end < 0 ? undefined : end)
    .map((l) => l.replace(/^- /, ''))
    .join('\n');
}
