import { KfarmError } from '../errors/kfarm-error.js';
import { toUnameArch } from './arch-names.js';
import { compareKernels, kernelFlavour, type KernelTarget } from './kernel-target.js';
import { isNewKernel, type BuiltKernel } from './new-kernels.js';
import { stageOfRelease, type ReleaseStage } from './release-stages.js';

/**
 * `--kernels` syntax: terms separated by commas or spaces.
 *   all                     every kernel
 *   6.1.0-28-amd64          exactly that kernel
 *   6.1.*  *-amd64          shell-style globs (* and ?)
 *   debian-12:6.12.*        only kernels of that image
 *   arch:arm64              by arch, Debian or uname name (amd64 = x86_64, arm64 = aarch64)
 *   release:debian-12       by release (the image's release label, else its name or name prefix)
 *   stage:released          kernels of Debian releases; stage:pre-release those of testing,
 *                           unstable and experimental (release-stages.ts)
 *   new                     kernels the module was not built for last time in this state dir
 *   next                    the newest kernel of each pre-release suite, per arch and flavour:
 *                           "does my driver build on what is coming?"
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
  | { kind: 'stage'; negate: boolean; stage: ReleaseStage }
  | { kind: 'new'; negate: boolean }
  | { kind: 'next'; negate: boolean };

const STAGES: readonly ReleaseStage[] = ['released', 'pre-release'];

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
    if (body === 'new' || body === 'next') return { kind: body, negate };
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
    if (prefix === 'stage') {
      const stage = STAGES.find((s) => s === value);
      if (!stage) throw new KfarmError('BAD_OPTION', `the selector term "${word}" names no stage`, { hint: `Stages: ${STAGES.map((s) => `stage:${s}`).join(', ')}.` });
      return { kind: 'stage', negate, stage };
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

/** The release a target belongs to, by kfarm's name: its label, else its image's name (debian-unstable). */
const releaseOf = (t: KernelTarget): string => t.release ?? t.image;

/**
 * Pure: `next`: of each pre-release suite's kernels, per arch and flavour, the newest (by
 * compareKernels: 7.3-amd64, an experimental rc without an ABI number, after 7.2.13+deb14-amd64).
 */
export function nextKernels(available: readonly KernelTarget[]): Set<KernelTarget> {
  const newest = new Map<string, KernelTarget>();
  for (const t of available) {
    if (stageOfRelease(releaseOf(t)) !== 'pre-release') continue;
    const key = `${releaseOf(t)}\0${toUnameArch(t.arch)}\0${kernelFlavour(t.kernel)}`;
    const current = newest.get(key);
    if (!current || compareKernels(t.kernel, current.kernel) > 0) newest.set(key, t);
  }
  return new Set(newest.values());
}

export function selectKernels(selector: string, available: readonly KernelTarget[], context: SelectContext = {}): KernelTarget[] {
  const terms = parseSelector(selector);
  if (terms.some((t) => t.kind === 'new') && context.lastBuilt === undefined) {
    throw new KfarmError('BAD_OPTION', '"new" in --kernels needs the module\'s build history, which this command does not keep', {
      hint: 'Use `new` with `kfarm build`; elsewhere name the kernels.',
    });
  }
  const lastBuilt = context.lastBuilt ?? [];
  const next = terms.some((t) => t.kind === 'next') ? nextKernels(available) : new Set<KernelTarget>();
  const matches = (term: Term, t: KernelTarget): boolean => {
    switch (term.kind) {
      case 'kernel':
        return (term.image === undefined || term.image === t.image) && term.pattern.test(t.kernel);
      case 'arch':
        return toUnameArch(t.arch) === term.arch;
      case 'release':
        return releaseMatches(term.pattern, t);
      case 'stage':
        return stageOfRelease(releaseOf(t)) === term.stage;
      case 'new':
        return isNewKernel(t, lastBuilt);
      case 'next':
        return next.has(t);
    }
  };
  const positives = terms.filter((t) => !t.negate);
  const negatives = terms.filter((t) => t.negate);
  // `new` and `next` narrow like a kernel term: `new` alone is the new kernels, `new,6.1.*` the new ones or the 6.1 ones
  const kindOf = (t: Term) => (t.kind === 'new' || t.kind === 'next' ? 'kernel' : t.kind);
  const kinds = new Set(positives.map(kindOf));
  const chosen = available.filter((t) => [...kinds].every((kind) => positives.some((p) => kindOf(p) === kind && matches(p, t))) && !negatives.some((n) => matches(n, t)));
  if (chosen.length === 0) {
    const list = available.map((t) => `${t.image}:${t.kernel}`).join(', ') || '(none: add kernels with `kfarm images sync debian-12`)';
    const wantsPreRelease = terms.some((t) => !t.negate && (t.kind === 'next' || (t.kind === 'stage' && t.stage === 'pre-release')));
    const noPreRelease = wantsPreRelease && !available.some((t) => stageOfRelease(releaseOf(t)) === 'pre-release');
    throw new KfarmError('KERNEL_SELECTOR_EMPTY', `no kernel matches "${selector}"`, {
      context: { selector },
      hint: `${noPreRelease ? 'No kernel of a pre-release suite is held: add them with `kfarm images sync debian-unstable` (or debian-testing, debian-experimental). ' : ''}Kernels available: ${list}`,
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
