import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * How a webhook receiver knows a request is the farm's (README, "Webhooks"): the body is
 * signed with HMAC-SHA256 under a shared secret, over "<timestamp>.<body>", so that a request
 * recorded and sent again later fails the timestamp check even though its MAC is good. Pure:
 * the notifier signs with it, a receiver (and the tests) verify with it.
 */
export const WEBHOOK_HEADERS = {
  event: 'x-kfarm-event',
  delivery: 'x-kfarm-delivery',
  timestamp: 'x-kfarm-timestamp',
  signature: 'x-kfarm-signature',
} as const;

/** how far a request's timestamp may be from the receiver's clock by default (seconds, either way) */
export const DEFAULT_TOLERANCE_SEC = 300;

const PREFIX = 'sha256=';

/** `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` */
export function signWebhook(secret: string | Buffer, timestampSec: number, body: string | Buffer): string {
  return PREFIX + createHmac('sha256', secret).update(`${timestampSec}.`).update(body).digest('hex');
}

/**
 * The headers of one delivery attempt. The timestamp is the attempt's, so a retry minutes
 * later still passes a receiver's tolerance; the delivery id is the event's, the same on
 * every retry.
 */
export function webhookHeaders(opts: { secret: string | Buffer; eventType: string; deliveryId: string; timestampSec: number; body: string | Buffer }): Record<string, string> {
  return {
    'content-type': 'application/json',
    [WEBHOOK_HEADERS.event]: opts.eventType,
    [WEBHOOK_HEADERS.delivery]: opts.deliveryId,
    [WEBHOOK_HEADERS.timestamp]: String(opts.timestampSec),
    [WEBHOOK_HEADERS.signature]: signWebhook(opts.secret, opts.timestampSec, opts.body),
  };
}

export type WebhookVerdict = { ok: true; timestampSec: number } | { ok: false; reason: 'missing-header' | 'bad-timestamp' | 'stale' | 'bad-signature' };

/** Header maps as Node's IncomingMessage gives them (lower-case names), or any casing. */
export type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>;

/**
 * A receiver's check: the timestamp within toleranceSec of now (either way), and the
 * signature the secret gives for "<timestamp>.<body>", compared in constant time. `body` must
 * be the bytes as received, before any JSON parsing.
 */
export function verifyWebhookSignature(secret: string | Buffer, headers: HeaderBag, body: string | Buffer, opts: { toleranceSec?: number; nowSec?: number } = {}): WebhookVerdict {
  const timestamp = header(headers, WEBHOOK_HEADERS.timestamp);
  const signature = header(headers, WEBHOOK_HEADERS.signature);
  if (timestamp === undefined || signature === undefined) return { ok: false, reason: 'missing-header' };
  if (!/^\d{1,15}$/.test(timestamp)) return { ok: false, reason: 'bad-timestamp' };
  const timestampSec = Number(timestamp);
  const nowSec = opts.nowSec ?? Math.floor(Date.now() / 1000);
  if (Math.abs(nowSec - timestampSec) > (opts.toleranceSec ?? DEFAULT_TOLERANCE_SEC)) return { ok: false, reason: 'stale' };
  const expected = Buffer.from(signWebhook(secret, timestampSec, body), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  // the length is public (always sha256= and 64 hex digits): only the comparison of equal lengths must not leak
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad-signature' };
  return { ok: true, timestampSec };
}

function header(headers: HeaderBag, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name) continue;
    // a header sent twice is not one we can trust either copy of
    if (Array.isArray(value)) return value.length === 1 ? (value[0] as string) : undefined;
    return value as string | undefined;
  }
  return undefined;
}
