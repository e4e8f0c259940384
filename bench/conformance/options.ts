import { KfarmError } from '../../src/errors/kfarm-error.js';
import { compareKernels } from '../../src/matrix/kernel-target.js';
import { RELEASES, isRelease, type Release } from './corpus.js';

export interface ConformanceOptions {
  releases: Release[];
  /** a kfarm kernel selector, applied to each release's amd64 kernels */
  kernels: string | undefined;
  allKernels: boolean;
  corpus: string[];
  /** only these archive packages (default: all of ARCHIVE_PACKAGES) */
  packages: string[] | undefined;
  /** the markdown file the table goes into; undefined: none */
  doc: string | undefined;
  /** download the archive packages again even when today's list is cached */
  refresh: boolean;
}

const USAGE =
  'usage: npm run conformance -- [--release debian-11,debian-12,debian-13] [--kernels <selector>] [--all-kernels] [--corpus <dir>]... [--packages a,b] [--doc docs/conformance.md | --no-doc] [--refresh]';

/** Pure: argv → options. */
export function parseOptions(argv: readonly string[]): ConformanceOptions {
  const options: ConformanceOptions = {
    releases: [...RELEASES],
    kernels: undefined,
    allKernels: false,
    corpus: [],
    packages: undefined,
    doc: 'docs/conformance.md',
    refresh: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw bad(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '--release': {
        const names = value().split(',').filter(Boolean);
        const unknown = names.filter((n) => !isRelease(n));
        if (unknown.length > 0 || names.length === 0) throw bad(`unknown release ${unknown.join(', ') || '(none)'}: choose among ${RELEASES.join(', ')}`);
        options.releases = names.filter(isRelease);
        break;
      }
      case '--kernels':
        options.kernels = value();
        break;
      case '--all-kernels':
        options.allKernels = true;
        break;
      case '--corpus':
        options.corpus.push(value());
        break;
      case '--packages':
        options.packages = value().split(',').filter(Boolean);
        break;
      case '--doc':
        options.doc = value();
        break;
      case '--no-doc':
        options.doc = undefined;
        break;
      case '--refresh':
        options.refresh = true;
        break;
      default:
        throw bad(`unknown option ${arg}`);
    }
  }
  return options;
}

function bad(message: string): KfarmError {
  return new KfarmError('BAD_OPTION', message, { hint: USAGE });
}

const GENERIC = /^\d+\.\d+\.\d+[^-]*(?:-\d+)?-amd64$/;
const seriesOf = (k: string) => /^(\d+\.\d+)\./.exec(k)?.[1] ?? k;

/**
 * Pure: the default kernels of a release, at most `max`: generic amd64 kernels first, the newest
 * of each upstream series before a second of any series (6.1.0-57, 6.12.117, then 6.1.0-56),
 * then the other flavours (cloud, rt) the same way.
 */
export function defaultKernels(held: readonly string[], max: number): string[] {
  const picked: string[] = [];
  for (const group of [held.filter((k) => GENERIC.test(k)), held.filter((k) => !GENERIC.test(k))]) {
    const bySeries = new Map<string, string[]>();
    for (const k of [...group].sort(compareKernels).reverse()) bySeries.set(seriesOf(k), [...(bySeries.get(seriesOf(k)) ?? []), k]);
    const queues = [...bySeries.entries()].sort((a, b) => compareKernels(b[0], a[0])).map(([, ks]) => ks);
    while (queues.some((q) => q.length > 0)) {
      for (const q of queues) {
        const k = q.shift();
        if (k !== undefined) picked.push(k);
      }
    }
  }
  return picked.slice(0, max).sort(compareKernels);
}
