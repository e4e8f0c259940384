import { KfarmError } from '../errors/kfarm-error.js';
import { toUnameArch } from './arch-names.js';
import { compareKernels, type KernelTarget } from './kernel-target.js';
import { isNewKernel, type BuiltKernel } from './new-kernels.js';

/**
 * `--kernels` syntax: terms separated by commas or spaces.
 *   all                     every kernel
 *   6.1.0-28-amd64          exactly that kernel
 *   6.1.*  *-amd64          shell-style globs (* and ?)
 *   debian-12:6.12.*        only kernels of that image
 *   arch:arm64              by arch, Debian or uname name (amd64 = x86_64, arm64 = aarch64)
 *   release:debian-12       by release (the image's release label, else its name or name prefix)
 *   new                     kernels the module was not built for last time in this state dir
 *   !term                   leave these out (any kind of term)
 * Terms of one kind are alternatives; the kinds combine: `arch:arm64 release:debian-12 6.1.*`
 * is the arm64 6.1 kernels of debian-12. A kind with no term does not restrict.
 * Pure: selection happens against the list the images say they hold.
 */
/** a glob compiled for matching (globMatcher): what a term's `pattern` is */
interface Glob {
  test(value: string): boolean;
}

type Term =
  | { kind: 'kernel'; negate: boolean; image: string | undefined; pattern: Glob }
  | { kind: 'arch'; negate: boolean; arch: string }
  | { kind: 'release'; negate: boolean; pattern: Glob }
  | { kind: 'new'; negate: boolean };

export interface SelectContext {
  /** what the module was last built for in this state dir ([] when never): needed by `new` */
  lastBuilt?: readonly BuiltKernel[];
}

export function parseSelector(selector: string): Term[] {
  const words = selector.split(/[\s,]+/).filter(Boolean);
  if (words.length === 0) {
    throw new KfarmError('BAD_OPTION', 'the kernel selector is empty', { hint: 'Pass --kernels all, a kernel release, or a glob such as 6.1.*' });
  }
  return words.map((word): Term => {
    const negate = word.startsWith('!');
    const body = negate ? word.slice(1) : word;
    if (body === 'new') return { kind: 'new', negate };
    const colon = body.indexOf(':');
    const prefix = colon >= 0 ? body.slice(0, colon) : undefined;
    const value = colon >= 0 ? body.slice(colon + 1) : body;
    if (prefix === 'arch' || prefix === 'release') {
      if (value === '')
        throw new KfarmError('BAD_OPTION', `the selector term "${word}" names no ${prefix}`, {
          hint: prefix === 'arch' ? 'e.g. arch:arm64 or arch:x86_64' : 'e.g. release:debian-12',
        });
      return prefix === 'arch' ? { kind: 'arch', negate, arch: toUnameArch(value) } : { kind: 'release', negate, pattern: globMatcher(value) };
    }
    return { kind: 'kernel', negate, image: prefix, pattern: globMatcher(value === 'all' || value === '' ? '*' : value) };
  });
}

/** The release a target belongs to: its label, else the image name, whose `debian-12…` prefix names it. */
function releaseMatches(pattern: Glob, t: KernelTarget): boolean {
  if (t.release !== undefined) return pattern.test(t.release);
  if (pattern.test(t.image)) return true;
  const prefix = /^([a-z]+-\d+)(?:[-_./:]|$)/.exec(t.image)?.[1];
  return prefix !== undefined && pattern.test(prefix);
}

export function selectKernels(selector: string, available: readonly KernelTarget[], context: SelectContext = {}): KernelTarget[] {
  const terms = parseSelector(selector);
  if (terms.some((t) => t.kind === 'new') && context.lastBuilt === undefined) {
    throw new KfarmError('BAD_OPTION', '"new" in --kernels needs the module\'s build history, which this command does not keep', {
      hint: 'Use `new` with `kfarm build`; elsewhere name the kernels.',
    });
  }
  const lastBuilt = context.lastBuilt ?? [];
  const matches = (term: Term, t: KernelTarget): boolean => {
    switch (term.kind) {
      case 'kernel':
        return (term.image === undefined || term.image === t.image) && term.pattern.test(t.kernel);
      case 'arch':
        return toUnameArch(t.arch) === term.arch;
      case 'release':
        return releaseMatches(term.pattern, t);
      case 'new':
        return isNewKernel(t, lastBuilt);
    }
  };
  const positives = terms.filter((t) => !t.negate);
  const negatives = terms.filter((t) => t.negate);
  // `new` narrows like a kernel term: `new` alone is the new kernels, `new,6.1.*` the new ones or the 6.1 ones
  const kinds = new Set(positives.map((t) => (t.kind === 'new' ? 'kernel' : t.kind)));
  const chosen = available.filter(
    (t) => [...kinds].every((kind) => positives.some((p) => (p.kind === 'new' ? 'kernel' : p.kind) === kind && matches(p, t))) && !negatives.some((n) => matches(n, t)),
  );
  if (chosen.length === 0) {
    const list = available.map((t) => `${t.image}:${t.kernel}`).join(', ') || '(none: add kernels with `kfarm images sync debian-12`)';
    throw new KfarmError('KERNEL_SELECTOR_EMPTY', `no kernel matches "${selector}"`, {
      context: { selector },
      hint: `Kernels available: ${list}`,
    });
  }
  return dedupe(chosen).sort((a, b) => compareKernels(a.kernel, b.kernel) || a.image.localeCompare(b.image));
}

/** The same kernel in two images is built once, from the first image that holds it. */
function dedupe(targets: KernelTarget[]): KernelTarget[] {
  const seen = new Map<string, KernelTarget>();
  for (const t of targets) if (!seen.has(`${t.kernel}/${t.arch}`)) seen.set(`${t.kernel}/${t.arch}`, t);
  return [...seen.values()];
}

/**
 * `*` and `?` globs, matched without a regex: `^.*.*.*x$` backtracks exponentially in the
 * number of stars (30 stars against a 66-character kernel did not finish), and a selector comes
 * from the command line and from the service's API. This is the classic two-pointer match
 * (back to the last star on a mismatch): at most the glob's length times the value's.
 */
function globMatcher(glob: string): Glob {
  return {
    test(value: string): boolean {
      let g = 0;
      let v = 0;
      let star = -1;
      let resume = 0;
      while (v < value.length) {
        if (g < glob.length && (glob[g] === '?' || (glob[g] !== '*' && glob[g] === value[v]))) {
          g++;
          v++;
        } else if (g < glob.length && glob[g] === '*') {
          star = g++;
          resume = v;
        } else if (star >= 0) {
          g = star + 1;
          v = ++resume;
        } else return false;
      }
      while (g < glob.length && glob[g] === '*') g++;
      return g === glob.length;
    },
  };
}
