import { KfarmError } from '../errors/kfarm-error.js';

const UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** The store's bound when neither --cache-size nor KFARM_CACHE_SIZE says otherwise. */
export const DEFAULT_CACHE_SIZE = 4 * 1024 ** 3;

/** "4G", "500M", "1.5g", "4GiB", "1024" (bytes) → bytes. Pure. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  const unit = UNITS[(m?.[2] ?? '').toUpperCase()];
  if (!m || unit === undefined) {
    throw new KfarmError('BAD_OPTION', `"${text}" is not a size`, { hint: 'Give a size such as 4G, 500M or 1024K (powers of 1024).' });
  }
  return Math.floor(Number(m[1]) * unit);
}

/** bytes → "3.2G", "512K", "17B". Pure. */
export function formatSize(bytes: number): string {
  for (const unit of ['T', 'G', 'M', 'K'] as const) {
    const n = bytes / (UNITS[unit] as number);
    if (n >= 1) return `${n >= 10 ? Math.round(n) : Math.round(n * 10) / 10}${unit}`;
  }
  return `${bytes}B`;
}

/** The bound to use: the option, else KFARM_CACHE_SIZE, else the default. */
export function cacheBound(option: string | undefined, fromEnv: string | undefined): number {
  return parseSize(option ?? fromEnv ?? String(DEFAULT_CACHE_SIZE));
}
