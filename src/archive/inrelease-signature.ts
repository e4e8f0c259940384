/**
 * Pure: whether gpgv's machine-readable status (`--status-fd`) vouches for an InRelease, by
 * apt's rule: at least one good signature from a key of the keyring and no bad one. A
 * signature by a key the keyring lacks is no reason to refuse on its own (Debian signs each
 * InRelease with several keys, and an older keyring may miss the newest), but it is never
 * the good one either. gpgv's exit status alone says 2 in that case, so it is not enough.
 */
export type SignatureVerdict = { ok: true; keys: string[] } | { ok: false; why: string };

export function signatureVerdict(status: string): SignatureVerdict {
  const lines = status
    .split('\n')
    .filter((l) => l.startsWith('[GNUPG:] '))
    .map((l) => l.slice('[GNUPG:] '.length).trim().split(/\s+/));
  const bad = lines.filter(([kw]) => kw === 'BADSIG');
  if (bad.length > 0) return { ok: false, why: `a BAD signature by key ${bad.map((l) => l[1]).join(', ')}: the file was altered` };
  const good = lines.filter(([kw]) => kw === 'GOODSIG').map((l) => l[1] ?? '');
  if (good.length > 0) return { ok: true, keys: good };
  const unknown = lines.filter(([kw]) => kw === 'NO_PUBKEY').map((l) => l[1] ?? '');
  if (unknown.length > 0) return { ok: false, why: `signed only by keys the keyring does not hold (${unknown.join(', ')})` };
  const expired = lines.filter(([kw]) => kw === 'EXPKEYSIG' || kw === 'REVKEYSIG' || kw === 'EXPSIG');
  if (expired.length > 0) return { ok: false, why: `signed only by expired or revoked keys (${expired.map((l) => l[1]).join(', ')})` };
  return { ok: false, why: 'no signature' };
}
