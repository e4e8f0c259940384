/** A kernel as the watch compares offers: which release and arch, which kernel, which headers version. */
export interface OfferedKernel {
  release: string;
  arch: string;
  kernel: string;
  version: string;
}

/** Pure: one offer's key; a new headers upload of the same kernel is a new key. */
export const offerKey = (k: OfferedKernel): string => `${k.release}/${k.arch}/${k.kernel}=${k.version}`;

export interface OfferChange<K extends OfferedKernel> {
  changed: boolean;
  /** offered now, not at the last check (every kernel at the first check) */
  added: K[];
  /** offered at the last check, not now */
  removed: string[];
}

/** Pure: what the archive offers now against the keys the last check saw (undefined: no check yet). */
export function compareOffers<K extends OfferedKernel>(previous: readonly string[] | undefined, now: readonly K[]): OfferChange<K> {
  const before = new Set(previous ?? []);
  const nowKeys = new Set(now.map(offerKey));
  const added = now.filter((k) => !before.has(offerKey(k)));
  const removed = [...before].filter((key) => !nowKeys.has(key)).sort();
  return { changed: previous === undefined || added.length > 0 || removed.length > 0, added, removed };
}
