import { describe, expect, it } from 'vitest';
import { GONE_KEPT_MS, MAX_TEXT, MAX_WORKER_KERNELS, localWorker, nextRoster, type AdvertFacts } from '../../src/service/dashboard/worker-roster.js';

const T0 = '2026-12-08T00:00:00.000Z';
const T1 = '2026-12-08T00:00:05.000Z';
const later = (ms: number) => new Date(Date.parse(T0) + ms).toISOString();

const advert = (worker: string, extra: Partial<AdvertFacts> = {}): AdvertFacts => ({
  worker,
  hostname: worker.split(':')[0] ?? worker,
  concurrency: 2,
  running: 1,
  images: [
    { name: 'debian-12', arch: 'x86_64', kernels: ['6.1.0-42-amd64'] },
    { name: 'debian-12', arch: 'x86_64', kernels: ['6.1.0-9-amd64'] },
    { name: 'debian-13', arch: 'x86_64', kernels: ['6.12.57+deb13-amd64'] },
  ],
  verify: ['tcg'],
  seenAt: T0,
  ...extra,
});

describe("the farm's workers (dashboard, GET /api/v1/workers)", () => {
  it('lists each advertising worker live: host, its images by release and arch with kernels in version order, builds running of its concurrency, last advert', () => {
    expect(nextRoster([], [advert('b-host:2'), advert('a-host:1', { running: 2 })], T1)).toEqual([
      {
        worker: 'a-host:1',
        host: 'a-host',
        running: 2,
        concurrency: 2,
        images: [
          { name: 'debian-12', arch: 'x86_64', kernels: ['6.1.0-9-amd64', '6.1.0-42-amd64'] },
          { name: 'debian-13', arch: 'x86_64', kernels: ['6.12.57+deb13-amd64'] },
        ],
        verify: ['tcg'],
        lastSeen: T0,
        state: 'live',
      },
      expect.objectContaining({ worker: 'b-host:2', running: 1, state: 'live' }),
    ]);
  });

  it('keeps a worker whose advert went as gone (since the look that missed it, running nothing), for a day, then drops it; one back is live again', () => {
    const first = nextRoster([], [advert('a:1'), advert('b:2')], T0);
    const second = nextRoster(first, [advert('a:1', { seenAt: T1 })], T1);
    expect(second.map((w) => [w.worker, w.state, w.goneSince, w.running, w.lastSeen])).toEqual([
      ['a:1', 'live', undefined, 1, T1],
      ['b:2', 'gone', T1, 0, T0],
    ]);
    // still gone a little later: its goneSince does not move
    const third = nextRoster(second, [advert('a:1')], later(GONE_KEPT_MS));
    expect(third.find((w) => w.worker === 'b:2')?.goneSince).toBe(T1);
    expect(nextRoster(third, [advert('a:1')], later(GONE_KEPT_MS + 10_000)).map((w) => w.worker)).toEqual(['a:1']);
    expect(nextRoster(second, [advert('a:1'), advert('b:2', { seenAt: later(9000) })], later(9000)).map((w) => [w.worker, w.state, w.goneSince])).toEqual([
      ['a:1', 'live', undefined],
      ['b:2', 'live', undefined],
    ]);
  });

  it('an advert of a kfarm that did not say what it runs shows 0 running; two adverts of one worker id make one row, the newest', () => {
    const roster = nextRoster([], [advert('a:1', { running: undefined }), advert('b:1', { seenAt: T1, running: 3 }), advert('b:1', { seenAt: T0, running: 1 })], T1);
    expect(roster.map((w) => [w.worker, w.running])).toEqual([
      ['a:1', 0],
      ['b:1', 3],
    ]);
  });

  it('cuts what a stranger with Redis access writes: long strings, huge or negative numbers, a bad time, endless kernel lists', () => {
    const long = 'h'.repeat(10_000);
    const kernels = Array.from({ length: MAX_WORKER_KERNELS + 50 }, (_, i) => `6.1.0-${i}-amd64`);
    const [w] = nextRoster(
      [],
      [
        advert(`${long}:1`, {
          hostname: long,
          running: -4,
          concurrency: 1e12,
          seenAt: 'not a time',
          verify: ['kvm', 'kvm', long],
          images: [{ name: long, arch: 'x86_64', kernels }],
        }),
      ],
      T1,
    );
    expect(w?.worker.length).toBe(MAX_TEXT);
    expect(w?.host.length).toBe(MAX_TEXT);
    expect(w?.running).toBe(0);
    expect(w?.concurrency).toBe(1_000_000);
    expect(w?.lastSeen).toBe(T1);
    expect(w?.verify).toEqual(['kvm', `${'h'.repeat(19)}\u2026`]);
    expect(w?.images[0]?.name.length).toBe(MAX_TEXT);
    expect(w?.images[0]?.kernels).toHaveLength(MAX_WORKER_KERNELS);
    expect(w?.images[0]?.more).toBe(50);
    expect(nextRoster([], [advert('a:1', { running: NaN }), advert('b:1', { running: 2.7 })], T1).map((x) => x.running)).toEqual([0, 2]);
  });

  it("local mode: kfarm serve's own process is the one worker, live, running what its builds run now, holding this engine's kernels", () => {
    expect(
      localWorker({
        host: 'farm',
        pid: 42,
        running: 1,
        concurrency: 3,
        kernels: [
          { kernel: '6.1.0-42-amd64', arch: 'x86_64', image: 'debian-12' },
          { kernel: '6.1.0-9-amd64', arch: 'x86_64', image: 'debian-12' },
        ],
        now: T1,
      }),
    ).toEqual({
      worker: 'farm:42',
      host: 'farm',
      running: 1,
      concurrency: 3,
      images: [{ name: 'debian-12', arch: 'x86_64', kernels: ['6.1.0-9-amd64', '6.1.0-42-amd64'] }],
      verify: [],
      lastSeen: T1,
      state: 'live',
    });
  });
});
