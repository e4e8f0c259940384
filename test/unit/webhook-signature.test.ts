import { describe, expect, it } from 'vitest';
import { parseWebhookEvent, serializeWebhookEvent, stableEventId, webhookEvent } from '../../src/service/notify/webhook-event.js';
import { signWebhook, verifyWebhookSignature, webhookHeaders } from '../../src/service/notify/webhook-signature.js';

/** The webhook's signature scheme (README "Webhooks") and its events' bodies, pure. */
const secret = 'a-shared-secret-of-32-characters';
const now = 1_700_000_000;
const event = webhookEvent({
  type: 'new-failure',
  module: 'hello',
  version: '1.0',
  kernel: '6.1.0-57-amd64',
  release: 'debian-12',
  arch: 'x86_64',
  flavour: 'amd64',
  verdict: 'failed',
  reason: 'make-failed',
  firstError: "hello.c:3:1: error: unknown type name 'foo'",
  buildId: 'b-1',
  reportPath: '/api/builds/b-1/report',
});
const body = serializeWebhookEvent(event);
const headers = webhookHeaders({ secret, eventType: event.type, deliveryId: event.id, timestampSec: now, body });

describe('webhook signature', () => {
  it('is HMAC-SHA256 of "<timestamp>.<body>" as openssl computes it (the README\'s receiver check)', () => {
    // printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac a-shared-secret-of-32-characters
    expect(signWebhook(secret, now, '{"a":1}')).toBe('sha256=0765db63e8680c666d80157e25924162244380e1534b59a7fa5d6f8a67da6d5d');
  });

  it('sends the event type, the event id as the delivery id, the timestamp and the signature', () => {
    expect(headers).toEqual({
      'content-type': 'application/json',
      'x-kfarm-event': 'new-failure',
      'x-kfarm-delivery': event.id,
      'x-kfarm-timestamp': String(now),
      'x-kfarm-signature': signWebhook(secret, now, body),
    });
  });

  it('verifies what it signed, whatever the header casing, body as string or bytes', () => {
    expect(verifyWebhookSignature(secret, headers, body, { nowSec: now })).toEqual({ ok: true, timestampSec: now });
    const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
    expect(verifyWebhookSignature(Buffer.from(secret), upper, Buffer.from(body), { nowSec: now + 10 }).ok).toBe(true);
  });

  it('refuses a tampered body', () => {
    const tampered = body.replace('"failed"', '"built"');
    expect(tampered).not.toBe(body);
    expect(verifyWebhookSignature(secret, headers, tampered, { nowSec: now })).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('refuses the wrong secret', () => {
    expect(verifyWebhookSignature('another-secret-of-32-characters!', headers, body, { nowSec: now })).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('refuses a stale or future timestamp (a replay), with the tolerance given or 300 s', () => {
    expect(verifyWebhookSignature(secret, headers, body, { nowSec: now + 301 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifyWebhookSignature(secret, headers, body, { nowSec: now - 301 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifyWebhookSignature(secret, headers, body, { nowSec: now + 300 }).ok).toBe(true);
    expect(verifyWebhookSignature(secret, headers, body, { nowSec: now + 61, toleranceSec: 60 })).toEqual({ ok: false, reason: 'stale' });
  });

  it('refuses a fresh timestamp put on an old signature (the timestamp is in the MAC)', () => {
    const replayed = { ...headers, 'x-kfarm-timestamp': String(now + 3600) };
    expect(verifyWebhookSignature(secret, replayed, body, { nowSec: now + 3600 })).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('refuses missing, doubled or malformed headers without throwing', () => {
    const { 'x-kfarm-signature': _s, ...unsigned } = headers;
    expect(verifyWebhookSignature(secret, unsigned, body, { nowSec: now })).toEqual({ ok: false, reason: 'missing-header' });
    expect(verifyWebhookSignature(secret, { ...headers, 'x-kfarm-signature': [headers['x-kfarm-signature']!, 'x'] }, body, { nowSec: now })).toEqual({
      ok: false,
      reason: 'missing-header',
    });
    expect(verifyWebhookSignature(secret, { ...headers, 'x-kfarm-timestamp': '1e9' }, body, { nowSec: now })).toEqual({ ok: false, reason: 'bad-timestamp' });
    expect(verifyWebhookSignature(secret, { ...headers, 'x-kfarm-signature': 'sha256=abc' }, body, { nowSec: now })).toEqual({ ok: false, reason: 'bad-signature' });
  });
});

describe('webhook events', () => {
  it('frame an event with a uuid and the time, and read back as the same event', () => {
    expect(event.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(event.schemaVersion).toBe(1);
    expect(parseWebhookEvent(body)).toEqual(event);
  });

  it('carry a regression window and a farm fault', () => {
    const regression = webhookEvent({
      type: 'regression',
      module: 'hello',
      version: '1.0',
      kernel: '6.1.0-57-amd64',
      release: 'debian-12',
      arch: 'x86_64',
      flavour: 'amd64',
      verdict: 'failed',
      buildId: 'b-2',
      reportPath: '/api/builds/b-2/report',
      lastGood: { kernel: '6.1.0-56-amd64', buildId: 'b-1' },
      firstBad: { kernel: '6.1.0-57-amd64', buildId: 'b-2' },
    });
    expect(parseWebhookEvent(serializeWebhookEvent(regression))).toMatchObject({ lastGood: { kernel: '6.1.0-56-amd64' }, firstBad: { kernel: '6.1.0-57-amd64' } });
    const fault = webhookEvent({ type: 'farm-fault', kind: 'worker-gone', message: 'worker host-b stopped answering', subject: 'host-b' }, { at: new Date(0) });
    expect(JSON.parse(serializeWebhookEvent(fault))).toMatchObject({ type: 'farm-fault', kind: 'worker-gone', time: '1970-01-01T00:00:00.000Z' });
  });

  it('refuse an event that lacks what a receiver needs (a caller bug, found where it is made)', () => {
    expect(() => webhookEvent({ type: 'new-failure', module: 'hello' } as never)).toThrow();
    expect(() => webhookEvent({ type: 'test', message: 'ping' }, { id: 'not-a-uuid' })).toThrow();
  });

  it('stable ids: the same parts give the same uuid, other parts another', () => {
    const a = stableEventId('new-failure', 'b-1', 'hello', '6.1.0-57-amd64');
    expect(a).toBe(stableEventId('new-failure', 'b-1', 'hello', '6.1.0-57-amd64'));
    expect(a).not.toBe(stableEventId('new-failure', 'b-1', 'hello', '6.1.0-58-amd64'));
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(webhookEvent({ type: 'test', message: 'ping' }, { id: a }).id).toBe(a);
  });
});
