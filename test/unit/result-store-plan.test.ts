import { describe, expect, it } from 'vitest';
import { planEviction } from '../../src/store/eviction-plan.js';
import { formatSize, parseSize, cacheBound, DEFAULT_CACHE_SIZE } from '../../src/store/size.js';

const blobs = (o: Record<string, number>) => new Map(Object.entries(o));

describe('result store eviction plan', () => {
  it('nothing goes while the store fits its bound', () => {
    const plan = planEviction([{ key: 'a', lastUsed: 1, bytes: 10, blobs: ['x'] }], blobs({ x: 90 }), 100);
    expect(plan).toEqual({ entries: [], blobs: [], before: 100, after: 100 });
  });

  it('drops least recently used entries first, and their blobs, until the store fits', () => {
    const entries = [
      { key: 'new', lastUsed: 300, bytes: 10, blobs: ['n'] },
      { key: 'old', lastUsed: 100, bytes: 10, blobs: ['o'] },
      { key: 'mid', lastUsed: 200, bytes: 10, blobs: ['m'] },
    ];
    const plan = planEviction(entries, blobs({ n: 100, o: 100, m: 100 }), 200);
    expect(plan.entries).toEqual(['old', 'mid']);
    expect(plan.blobs).toEqual(['o', 'm']);
    expect(plan.before).toBe(330);
    expect(plan.after).toBe(110);
  });

  it('a blob shared with an entry that stays is kept; it counts once', () => {
    const entries = [
      { key: 'old', lastUsed: 1, bytes: 0, blobs: ['shared', 'o'] },
      { key: 'new', lastUsed: 2, bytes: 0, blobs: ['shared', 'n'] },
    ];
    const plan = planEviction(entries, blobs({ shared: 100, o: 50, n: 50 }), 150);
    expect(plan.before).toBe(200);
    expect(plan.entries).toEqual(['old']);
    expect(plan.blobs).toEqual(['o']);
    expect(plan.after).toBe(150);
  });

  it('blobs no entry refers to (a put that died half way) go first', () => {
    const plan = planEviction([{ key: 'a', lastUsed: 1, bytes: 0, blobs: ['x'] }], blobs({ x: 10, stray: 500 }), 100);
    expect(plan.entries).toEqual([]);
    expect(plan.blobs).toEqual(['stray']);
    expect(plan.after).toBe(10);
  });

  it('a bound of 0 empties the store', () => {
    const plan = planEviction(
      [
        { key: 'a', lastUsed: 1, bytes: 5, blobs: ['x'] },
        { key: 'b', lastUsed: 2, bytes: 5, blobs: ['x'] },
      ],
      blobs({ x: 10 }),
      0,
    );
    expect(plan.entries.sort()).toEqual(['a', 'b']);
    expect(plan.blobs).toEqual(['x']);
    expect(plan.after).toBe(0);
  });
});

describe('sizes', () => {
  it('reads human sizes in powers of 1024', () => {
    expect(parseSize('4G')).toBe(4 * 1024 ** 3);
    expect(parseSize('500M')).toBe(500 * 1024 ** 2);
    expect(parseSize('1.5g')).toBe(1.5 * 1024 ** 3);
    expect(parseSize('4GiB')).toBe(4 * 1024 ** 3);
    expect(parseSize('1024')).toBe(1024);
    expect(parseSize('0')).toBe(0);
  });

  it('refuses what is not a size', () => {
    for (const bad of ['', 'G', '-1G', '4X', 'lots']) expect(() => parseSize(bad)).toThrow(/is not a size/);
  });

  it('prints sizes short', () => {
    expect(formatSize(17)).toBe('17B');
    expect(formatSize(512 * 1024)).toBe('512K');
    expect(formatSize(3.25 * 1024 ** 3)).toBe('3.3G');
    expect(formatSize(4 * 1024 ** 3)).toBe('4G');
  });

  it('the option wins over KFARM_CACHE_SIZE, which wins over the default', () => {
    expect(cacheBound('1G', '2G')).toBe(1024 ** 3);
    expect(cacheBound(undefined, '2G')).toBe(2 * 1024 ** 3);
    expect(cacheBound(undefined, undefined)).toBe(DEFAULT_CACHE_SIZE);
  });
});
