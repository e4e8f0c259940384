/**
 * rpm's version order (lib/rpmvercmp.c of rpm 4.18), so that "the newest N versions" of a
 * module in a DNF repository are the ones dnf itself calls newest. Segments of digits or of
 * letters are compared in turn (digits numerically, and a digit segment beats a letter one),
 * other characters only separate, `~` sorts before everything (1.0~rc1 < 1.0), `^` after the end
 * but before anything else (1.0 < 1.0^git1 < 1.0.1). Pure.
 */
export function rpmVercmp(a: string, b: string): -1 | 0 | 1 {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  const separator = (c: string | undefined) => c !== undefined && !isAlnum(c) && c !== '~' && c !== '^';
  while (i < a.length || j < b.length) {
    while (separator(a[i])) i++;
    while (separator(b[j])) j++;
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++;
      j++;
      continue;
    }
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (i >= a.length || j >= b.length) break;
    const numeric = isDigit(a[i]!);
    const take = numeric ? isDigit : isAlpha;
    let ei = i;
    let ej = j;
    while (ei < a.length && take(a[ei]!)) ei++;
    while (ej < b.length && take(b[ej]!)) ej++;
    // a's segment cannot be empty here (it starts with an alnum of its own kind); b's can
    if (ej === j) return numeric ? 1 : -1;
    let one = a.slice(i, ei);
    let two = b.slice(j, ej);
    if (numeric) {
      one = one.replace(/^0+/, '');
      two = two.replace(/^0+/, '');
      if (one.length !== two.length) return one.length > two.length ? 1 : -1;
    }
    if (one !== two) return one < two ? -1 : 1;
    i = ei;
    j = ej;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

/** [epoch:]version-release as rpm orders them: epoch first (none is 0), then version, then release. */
export function rpmEvrCompare(a: { epoch?: number; version: string; release: string }, b: { epoch?: number; version: string; release: string }): -1 | 0 | 1 {
  const ea = a.epoch ?? 0;
  const eb = b.epoch ?? 0;
  if (ea !== eb) return ea < eb ? -1 : 1;
  return rpmVercmp(a.version, b.version) || rpmVercmp(a.release, b.release);
}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}
function isAlpha(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
function isAlnum(c: string): boolean {
  return isDigit(c) || isAlpha(c);
}
