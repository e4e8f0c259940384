import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { KfarmImage } from '../../src/images/catalog.js';
import { openFarmDb } from '../../src/service/db/open-farm-db.js';
import type { KernelSeenRow } from '../../src/service/farm-db.js';
import { planPrune } from '../../src/service/watch/prune-plan.js';
import { planWatch } from '../../src/service/watch/watch-plan.js';

const DAY = 86_400_000;
const NOW = '2026-12-08T12:00:00.000Z';
const daysAgo = (d: number) => new Date(Date.parse(NOW) - d * DAY).toISOString();

const seen = (kernel: string, extra: Partial<KernelSeenRow> = {}): KernelSeenRow => ({
  kernel,
  release: 'debian-12',
  arch: 'amd64',
  flavour: 'amd64',
  version: '1',
  firstSeen: daysAgo(100),
  lastSeen: daysAgo(40),
  ...extra,
});
const image = (kernel: string, extra: Partial<KfarmImage> = {}): KfarmImage => ({
  name: 'debian-12',
  ref: `kfarm/debian-12:${kernel}`,
  id: `sha256:${kernel}`,
  arch: 'x86_64',
  kernels: [kernel],
  ...extra,
});

const K40 = '6.1.0-40-amd64';
const K41 = '6.1.0-41-amd64';
const K42 = '6.1.0-42-amd64';

describe('planPrune: which gone kernels the watch prunes', () => {
  const rows = [seen(K40, { goneSince: daysAgo(40) }), seen(K41, { goneSince: daysAgo(3) }), seen(K42, { lastSeen: NOW })];
  const held = [image(K40), image(K41), image(K42)];

  it('prunes nothing without the setting (the default: a gone kernel is kept for fleets that still run it)', () => {
    expect(planPrune({ seen: rows, held, now: NOW, afterMs: undefined, busy: false })).toEqual({ prune: [], waiting: [], shared: [] });
  });

  it('prunes the kernels gone at least that long, with their images; one gone less long and one still offered stay', () => {
    const plan = planPrune({ seen: rows, held, now: NOW, afterMs: 30 * DAY, busy: false });
    expect(plan.prune.map((s) => [s.kernel.kernel, s.images.map((i) => i.ref)])).toEqual([[K40, [`kfarm/debian-12:${K40}`]]]);
    expect(plan.shared).toEqual([]);
    // at exactly the setting it is due; a day later the second one too, oldest gone first
    expect(planPrune({ seen: rows, held, now: NOW, afterMs: 40 * DAY, busy: false }).prune.map((s) => s.kernel.kernel)).toEqual([K40]);
    expect(planPrune({ seen: rows, held, now: NOW, afterMs: 0, busy: false }).prune.map((s) => s.kernel.kernel)).toEqual([K40, K41]);
  });

  it('prunes a kernel once: one already pruned is left alone; a kernel the farm never held is marked with no image to remove', () => {
    const plan = planPrune({
      seen: [seen(K40, { goneSince: daysAgo(40), prunedAt: daysAgo(9) }), seen(K41, { goneSince: daysAgo(40) })],
      held: [],
      now: NOW,
      afterMs: DAY,
      busy: false,
    });
    expect(plan.prune.map((s) => [s.kernel.kernel, s.images])).toEqual([[K41, []]]);
  });

  it('waits while a build is queued or running (it may need the image): the kernels due are named, nothing pruned', () => {
    expect(planPrune({ seen: rows, held, now: NOW, afterMs: 0, busy: true })).toEqual({ prune: [], waiting: [K40, K41], shared: [] });
  });

  it('matches images by release, arch (x86_64 is amd64) and kernel: an arm64 image or another release of the same name stays', () => {
    const arm = image(K40, { arch: 'aarch64', id: 'sha256:arm', ref: 'kfarm/debian-12:arm' });
    const other = image(K40, { name: 'debian-13', id: 'sha256:13', ref: 'kfarm/debian-13:x' });
    const plan = planPrune({ seen: [seen(K40, { goneSince: daysAgo(40) })], held: [arm, other, image(K40)], now: NOW, afterMs: DAY, busy: false });
    expect(plan.prune.flatMap((s) => s.images.map((i) => i.ref))).toEqual([`kfarm/debian-12:${K40}`]);
  });

  it('keeps an image that also holds kernels not due (the old one-image-many-kernels layout), and says which', () => {
    const shared = { id: 'sha256:multi', ref: 'kfarm/debian-12:latest' };
    const plan = planPrune({ seen: rows, held: [image(K40, shared), image(K42, shared)], now: NOW, afterMs: DAY, busy: false });
    expect(plan.prune.map((s) => [s.kernel.kernel, s.images])).toEqual([[K41, []]]); // K41 is due too, and held nowhere
    expect(plan.shared).toEqual([{ kernel: K40, others: [K42] }]);
    // all of its kernels due: it goes, once per kernel it held
    const both = planPrune({ seen: rows, held: [image(K40, shared), image(K41, shared)], now: NOW, afterMs: 0, busy: false });
    expect(both.prune.map((s) => [s.kernel.kernel, s.images.map((i) => i.id)])).toEqual([
      [K40, ['sha256:multi']],
      [K41, ['sha256:multi']],
    ]);
  });

  it('ignores a negative, infinite or unreadable setting and a goneSince that is not a time', () => {
    for (const afterMs of [-1, Infinity, NaN]) expect(planPrune({ seen: rows, held, now: NOW, afterMs, busy: false }).prune).toEqual([]);
    expect(planPrune({ seen: [seen(K40, { goneSince: 'yesterday' })], held, now: NOW, afterMs: 0, busy: false }).prune).toEqual([]);
  });
});

describe('a pruned kernel in the farm database and the watch plan', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'kfarm-prune-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const offer = (kernel: string) => ({ kernel, release: 'debian-12', arch: 'amd64', flavour: 'amd64', version: '1' });

  it('is marked only when gone, survives a reopen, is no longer pruned (nor gone) when the archive offers it again', () => {
    const file = path.join(root, 'a', 'farm.db');
    const db = openFarmDb(file);
    db.kernels.observe([offer(K40), offer(K41)], 't1');
    db.kernels.observe([offer(K41)], 't2');
    db.kernels.markPruned(
      [
        { release: 'debian-12', arch: 'amd64', kernel: K40 },
        { release: 'debian-12', arch: 'amd64', kernel: K41 },
      ],
      't3',
    );
    expect(db.kernels.list().map((k) => [k.kernel, k.goneSince, k.prunedAt])).toEqual([
      [K40, 't2', 't3'],
      [K41, undefined, undefined], // still offered: not pruned
    ]);
    db.close();
    const again = openFarmDb(file);
    expect(again.kernels.list()[0]).toMatchObject({ kernel: K40, goneSince: 't2', prunedAt: 't3' });
    again.kernels.observe([offer(K40), offer(K41)], 't4');
    expect(again.kernels.list()[0]).toEqual({ ...offer(K40), firstSeen: 't1', lastSeen: 't4' });
    again.close();
  });

  it('the watch does not sync a pruned kernel again (a gone one it still would, as before)', () => {
    const base = { flavours: [], held: new Set<string>(), modules: [], results: new Map(), unfinished: [] };
    const rows = [
      seen(K40, { firstSeen: daysAgo(100) }),
      seen(K41, { firstSeen: daysAgo(50), goneSince: daysAgo(40) }),
      seen(K42, { firstSeen: daysAgo(50), goneSince: daysAgo(40), prunedAt: daysAgo(1) }),
    ];
    expect(planWatch({ ...base, seen: rows }).sync).toEqual([K41]);
  });
});
