import { compareKernels } from '../../matrix/kernel-target.js';
import type { DashboardWorker, WorkerImages } from './dashboard-model.js';

/**
 * Pure: the farm's workers as the dashboard and `GET /api/v1/workers` show them, from what
 * they advertise in Redis (queue/worker-registry.ts, each advert checked by its schema there)
 * and what the service saw before: a worker whose advert is gone (expired a minute after its
 * last renewal, or withdrawn when it stopped) stays in the list as gone for a day, so a person
 * sees the host that left, not just one row fewer. Whoever can write to the farm's Redis
 * writes these strings: each is cut to a bound, numbers are clamped, lists are capped.
 */

/** What the roster reads of one advert (a WorkerAdvert). */
export interface AdvertFacts {
  worker: string;
  hostname: string;
  concurrency: number;
  running?: number;
  images: ReadonlyArray<{ name: string; arch: string; kernels: readonly string[] }>;
  verify?: readonly string[];
  seenAt: string;
}

/** the longest host, worker id, image or kernel name kept */
export const MAX_TEXT = 200;
/** kernels listed per image group of a worker; the rest is a count */
export const MAX_WORKER_KERNELS = 200;
/** workers listed (live ones first) */
export const MAX_WORKERS = 200;
/** how long a gone worker stays in the list */
export const GONE_KEPT_MS = 24 * 3_600_000;

const text = (s: unknown, max = MAX_TEXT): string => {
  const t = typeof s === 'string' ? s : '';
  return t.length > max ? `${t.slice(0, max - 1)}\u2026` : t;
};
const count = (n: unknown): number => (typeof n === 'number' && Number.isFinite(n) && n > 0 ? Math.min(Math.floor(n), 1_000_000) : 0);
const isoOr = (s: unknown, fallback: string): string => {
  const t = typeof s === 'string' ? Date.parse(s) : NaN;
  return Number.isFinite(t) ? new Date(t).toISOString() : fallback;
};

/** Images grouped by (name, arch), kernels in version order, each group's list capped. */
export function groupImages(images: ReadonlyArray<{ name: string; arch: string; kernels: readonly string[] }>): WorkerImages[] {
  const groups = new Map<string, { name: string; arch: string; kernels: Set<string> }>();
  for (const image of images.slice(0, 10_000)) {
    const name = text(image.name);
    const arch = text(image.arch, 40);
    const key = `${name}\u0000${arch}`;
    const group = groups.get(key) ?? { name, arch, kernels: new Set<string>() };
    groups.set(key, group);
    for (const k of image.kernels.slice(0, 10_000)) group.kernels.add(text(k));
  }
  return [...groups.values()]
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }) || a.arch.localeCompare(b.arch))
    .slice(0, 50)
    .map((g) => {
      const kernels = [...g.kernels].sort(compareKernels);
      const more = kernels.length - MAX_WORKER_KERNELS;
      return { name: g.name, arch: g.arch, kernels: kernels.slice(0, MAX_WORKER_KERNELS), ...(more > 0 ? { more } : {}) };
    });
}

/** One advert as a live worker of the list. */
export function workerOfAdvert(a: AdvertFacts, now: string): DashboardWorker {
  return {
    worker: text(a.worker),
    host: text(a.hostname),
    running: count(a.running),
    concurrency: count(a.concurrency),
    images: groupImages(a.images),
    verify: [...new Set((a.verify ?? []).map((l) => text(l, 20)))].slice(0, 10),
    lastSeen: isoOr(a.seenAt, now),
    state: 'live',
  };
}

/**
 * The list after a look at the adverts: every advertising worker live (one row per worker id),
 * then those of `previous` that no longer advertise, gone since now (or since they were first
 * seen gone), until GONE_KEPT_MS after that. A gone worker that advertises again is live again.
 */
export function nextRoster(previous: readonly DashboardWorker[], adverts: readonly AdvertFacts[], now: string, keepGoneMs = GONE_KEPT_MS): DashboardWorker[] {
  const live = new Map<string, DashboardWorker>();
  for (const a of adverts) {
    const w = workerOfAdvert(a, now);
    const have = live.get(w.worker);
    if (!have || have.lastSeen < w.lastSeen) live.set(w.worker, w);
  }
  const nowMs = Date.parse(now);
  const gone = previous
    .filter((w) => !live.has(w.worker))
    .map((w): DashboardWorker => (w.state === 'gone' && w.goneSince ? w : { ...w, running: 0, state: 'gone', goneSince: now }))
    .filter((w) => !(nowMs - Date.parse(w.goneSince ?? now) > keepGoneMs));
  const byHost = (a: DashboardWorker, b: DashboardWorker) => a.host.localeCompare(b.host, 'en', { numeric: true }) || a.worker.localeCompare(b.worker, 'en', { numeric: true });
  const goneFirstSeenLast = (a: DashboardWorker, b: DashboardWorker) => (b.goneSince ?? '').localeCompare(a.goneSince ?? '') || byHost(a, b);
  return [...[...live.values()].sort(byHost), ...gone.sort(goneFirstSeenLast)].slice(0, MAX_WORKERS);
}

/**
 * kfarm serve's own process as the farm's one worker (local mode: no REDIS_URL, the builds run
 * here on this host's engine): always live, running what the builds in flight run now.
 */
export function localWorker(input: {
  host: string;
  pid: number;
  running: number;
  concurrency: number;
  kernels: ReadonlyArray<{ kernel: string; arch: string; image: string }>;
  now: string;
}): DashboardWorker {
  const images = new Map<string, { name: string; arch: string; kernels: string[] }>();
  for (const k of input.kernels) {
    const key = `${k.image}\u0000${k.arch}`;
    const image = images.get(key) ?? { name: k.image, arch: k.arch, kernels: [] };
    images.set(key, image);
    image.kernels.push(k.kernel);
  }
  return workerOfAdvert(
    { worker: `${input.host}:${input.pid}`, hostname: input.host, concurrency: input.concurrency, running: input.running, images: [...images.values()], seenAt: input.now },
    input.now,
  );
}
