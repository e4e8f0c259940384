/**
 * Which entries to drop so the store fits its bound: least recently used first. Blobs are
 * shared between entries (one log or module in several results), so a blob goes only when no
 * entry that stays refers to it, and the size that counts is each blob once plus each entry
 * file. Pure.
 */
export interface EntryUse {
  key: string;
  /** ms since the epoch of its last use (put or hit) */
  lastUsed: number;
  /** the entry file's own bytes */
  bytes: number;
  blobs: readonly string[];
}

export interface EvictionPlan {
  entries: string[];
  blobs: string[];
  /** the store's size before and after */
  before: number;
  after: number;
}

export function planEviction(entries: readonly EntryUse[], blobSizes: ReadonlyMap<string, number>, maxBytes: number): EvictionPlan {
  const refs = new Map<string, number>();
  for (const e of entries) for (const b of new Set(e.blobs)) refs.set(b, (refs.get(b) ?? 0) + 1);
  // blobs no entry refers to (left by a put that died half way) count and go first
  const orphans = [...blobSizes.keys()].filter((b) => !refs.has(b));
  let size = [...blobSizes.values()].reduce((a, b) => a + b, 0) + entries.reduce((a, e) => a + e.bytes, 0);
  const before = size;
  const drop: string[] = [];
  const dropBlobs: string[] = [];
  for (const b of orphans) {
    dropBlobs.push(b);
    size -= blobSizes.get(b) ?? 0;
  }
  const byAge = [...entries].sort((a, b) => a.lastUsed - b.lastUsed || (a.key < b.key ? -1 : 1));
  for (const e of byAge) {
    if (size <= maxBytes) break;
    drop.push(e.key);
    size -= e.bytes;
    for (const b of new Set(e.blobs)) {
      const left = (refs.get(b) ?? 0) - 1;
      refs.set(b, left);
      if (left === 0 && blobSizes.has(b)) {
        dropBlobs.push(b);
        size -= blobSizes.get(b) ?? 0;
      }
    }
  }
  return { entries: drop, blobs: dropBlobs, before, after: size };
}
