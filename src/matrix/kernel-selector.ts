import { KfarmError } from '../errors/kfarm-error.js';
import { compareKernels, type KernelTarget } from './kernel-target.js';

/**
 * `--kernels` syntax: terms separated by commas or spaces; a kernel is selected when some
 * plain term matches it and no `!term` does.
 *   all                     every kernel
 *   6.1.0-28-amd64          exactly that kernel
 *   6.1.*  *-amd64          shell-style globs (* and ?)
 *   debian-12:6.12.*        only kernels of that image
 *   !*-rt-amd64             leave these out
 * Pure: selection happens against the list the images say they hold.
 */
interface Term {
  negate: boolean;
  image: string | undefined;
  pattern: RegExp;
}

export function parseSelector(selector: string): Term[] {
  const words = selector.split(/[\s,]+/).filter(Boolean);
  if (words.length === 0) {
    throw new KfarmError('BAD_OPTION', 'the kernel selector is empty', { hint: 'Pass --kernels all, a kernel release, or a glob such as 6.1.*' });
  }
  return words.map((word) => {
    const negate = word.startsWith('!');
    const body = negate ? word.slice(1) : word;
    const colon = body.indexOf(':');
    const image = colon >= 0 ? body.slice(0, colon) : undefined;
    const glob = colon >= 0 ? body.slice(colon + 1) : body;
    return { negate, image, pattern: globToRegExp(glob === 'all' || glob === '' ? '*' : glob) };
  });
}

export function selectKernels(selector: string, available: readonly KernelTarget[]): KernelTarget[] {
  const terms = parseSelector(selector);
  const matches = (term: Term, t: KernelTarget) =>
    (term.image === undefined || term.image === t.image) && term.pattern.test(t.kernel);
  const positives = terms.filter((t) => !t.negate);
  const negatives = terms.filter((t) => t.negate);
  const chosen = available.filter(
    (t) => (positives.length === 0 || positives.some((p) => matches(p, t))) && !negatives.some((n) => matches(n, t)),
  );
  if (chosen.length === 0) {
    const list = available.map((t) => `${t.image}:${t.kernel}`).join(', ') || '(none: build an image with `kfarm images build debian-12`)';
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

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}
