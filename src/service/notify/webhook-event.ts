import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { VERDICT_NAMES } from '../../dkms/verdicts.js';

/**
 * What `kfarm serve` tells a webhook (issue 23, "Notifications"): one JSON object per event,
 * told apart by `type`. The body is all a receiver gets, so each event carries the names a
 * person needs to act (module, kernel series, the first compiler error) and where the full
 * report is (`reportPath`, a path on the farm's API: the receiver knows the farm's address).
 * The words are stable: fields are added, never renamed or dropped (schemaVersion says which).
 */
export const WEBHOOK_SCHEMA_VERSION = 1;

const nonEmpty = z.string().min(1);

/** One (module, kernel) result, the fields farm-db's ResultRow holds. */
const cellFields = {
  /** PACKAGE_NAME of the module's dkms.conf */
  module: nonEmpty,
  /** PACKAGE_VERSION */
  version: nonEmpty,
  /** the kernel's uname -r (6.1.0-57-amd64) */
  kernel: nonEmpty,
  /** the distribution release (debian-12) */
  release: nonEmpty,
  /** kfarm's arch name (x86_64, aarch64) */
  arch: nonEmpty,
  /** the kernel's flavour (amd64, cloud-amd64, rt-arm64) */
  flavour: nonEmpty,
  verdict: z.enum(VERDICT_NAMES),
  /** why a failed or excluded cell is so (verdicts.ts REASONS) */
  reason: z.string().optional(),
  /** the compiler's first error line, when the build failed in make */
  firstError: z.string().optional(),
  /** the build that gave the result */
  buildId: nonEmpty,
  /** where the build's report is on the farm's HTTP API (/api/builds/<id>/report) */
  reportPath: z.string().startsWith('/'),
};

const base = {
  schemaVersion: z.literal(WEBHOOK_SCHEMA_VERSION),
  /** a uuid: the X-Kfarm-Delivery header, the same on every retry of the event (receivers dedupe on it) */
  id: z.string().uuid(),
  /** ISO 8601, when the event happened (not when it was delivered) */
  time: z.string().datetime(),
};

/** kernel in a regression window */
const kernelRef = z.object({ kernel: nonEmpty, buildId: nonEmpty.optional() });

export const webhookEventSchema = z.discriminatedUnion('type', [
  /** a module was built for a kernel new to the farm (whatever the verdict) */
  z.object({ ...base, type: z.literal('kernel-built'), ...cellFields }),
  /** a (module, kernel) cell failed that had not failed before */
  z.object({ ...base, type: z.literal('new-failure'), ...cellFields }),
  /**
   * a kernel series (release, arch, flavour) of a module went from built to failed: it builds
   * on lastGood, fails since firstBad (the cell fields are firstBad's result)
   */
  z.object({
    ...base,
    type: z.literal('regression'),
    ...cellFields,
    lastGood: kernelRef,
    firstBad: kernelRef,
    /** which check broke: the build, or the load of a module that still builds (schemaVersion 1 events without it are build regressions) */
    check: z.enum(['build', 'load']).optional(),
    /** the window as people read it: "builds on 6.1.0-56-amd64, fails since 6.1.0-57-amd64" */
    sentence: z.string().optional(),
  }),
  /** the farm itself is in trouble: the archive sync failing, a worker gone */
  z.object({
    ...base,
    type: z.literal('farm-fault'),
    kind: z.enum(['sync-failed', 'worker-gone', 'other']),
    message: nonEmpty,
    /** what the fault is about (the worker's name, the release that failed to sync) */
    subject: z.string().optional(),
  }),
  /** a ping, sent on request to check a receiver's wiring */
  z.object({ ...base, type: z.literal('test'), message: z.string() }),
]);

export type WebhookEvent = z.infer<typeof webhookEventSchema>;
export type WebhookEventType = WebhookEvent['type'];
export const WEBHOOK_EVENT_TYPES = ['kernel-built', 'new-failure', 'regression', 'farm-fault', 'test'] as const satisfies readonly WebhookEventType[];

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** An event as a caller states it: the notifier's frame (schemaVersion, id, time) is added by webhookEvent. */
export type WebhookEventInput = DistributiveOmit<WebhookEvent, 'schemaVersion' | 'id' | 'time'>;

/**
 * Frames an event: a fresh uuid unless `id` is given (stableEventId, for an event a resumed
 * build may state again), the time now unless `at` is given. Throws (zod) on an event that
 * does not match its schema: a caller's bug, found where it is made.
 */
export function webhookEvent(input: WebhookEventInput, opts: { id?: string; at?: Date } = {}): WebhookEvent {
  return webhookEventSchema.parse({ ...input, schemaVersion: WEBHOOK_SCHEMA_VERSION, id: opts.id ?? randomUUID(), time: (opts.at ?? new Date()).toISOString() });
}

/**
 * A uuid named by what the event is about (a name-based, version 5 layout over sha1), so that
 * the same event stated twice (a build resumed after a restart reports its cells again) gets
 * the same id, and the notifier delivers it once.
 */
export function stableEventId(...parts: readonly string[]): string {
  const hash = createHash('sha1')
    .update(JSON.stringify(['kfarm-webhook', ...parts]))
    .digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The request body: the event's JSON, nothing else (no secret, no delivery data). */
export function serializeWebhookEvent(event: WebhookEvent): string {
  return JSON.stringify(event);
}

/** A received body back into an event, checked against the schema. */
export function parseWebhookEvent(body: string): WebhookEvent {
  return webhookEventSchema.parse(JSON.parse(body));
}
