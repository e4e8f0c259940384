import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { matchRoute } from '../../src/service/http/service-server.js';
import { ROUTES } from '../../src/service/http/service-routes.js';
import { parseSse, type SseEvent } from '../../src/service/client/farm-client.js';
import { signWebhook, verifyWebhookSignature, WEBHOOK_HEADERS } from '../../src/service/notify/webhook-signature.js';
import { planWatch } from '../../src/service/watch/watch-plan.js';
import type { BuildRow, KernelSeenRow, ModuleRow, ResultRow } from '../../src/service/farm-db.js';
import { RUNS } from './runs.js';

const segment = fc.oneof(fc.constantFrom('api', 'v1', 'builds', 'modules', 'kernels', '..', '.', '', '%2e%2e', '%2F', '%', '%zz', 'x'), fc.string({ maxLength: 8 }));
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'get'];

describe('fuzz: service routes, event streams, webhooks, watch plans', () => {
  it('matchRoute never throws; a match is a route of the list with the method asked (HEAD = GET) and every {param} non-empty', () => {
    fc.assert(
      fc.property(fc.constantFrom(...METHODS), fc.array(segment, { maxLength: 8 }), (method, segs) => {
        const m = matchRoute(ROUTES, method, `/${segs.join('/')}`);
        if (m === undefined) return;
        if ('methods' in m) {
          expect(m.methods.length).toBeGreaterThan(0);
          expect(m.methods).not.toContain(method === 'HEAD' ? 'GET' : method);
          return;
        }
        expect(ROUTES).toContain(m.route);
        expect(m.route.method === method || (method === 'HEAD' && m.route.method === 'GET')).toBe(true);
        for (const v of Object.values(m.params)) expect(v).not.toBe('');
      }),
      { numRuns: RUNS },
    );
  });

  it('matchRoute round-trips: a route template filled with encoded values matches that route (or an earlier one) and decodes them back', () => {
    const templated = ROUTES.filter((r) => r.path.includes('{'));
    fc.assert(
      fc.property(fc.constantFrom(...templated), fc.array(fc.string({ minLength: 1, maxLength: 10 }), { minLength: 4, maxLength: 4 }), (route, values) => {
        let i = 0;
        const wanted: Record<string, string> = {};
        const path = route.path.replace(/\{(\w+)\}/g, (_, name: string) => {
          const v = values[i++] ?? 'x';
          wanted[name] = v;
          return encodeURIComponent(v);
        });
        const m = matchRoute(ROUTES, route.method, path);
        expect(m && 'route' in m).toBe(true);
        if (!m || !('route' in m)) return;
        // an earlier route may take the path (a literal segment that equals the value): its params are then its own
        if (m.route === route) expect(m.params).toEqual(wanted);
      }),
      { numRuns: RUNS },
    );
  });

  const eventArb = fc.record({ id: fc.integer({ min: 1, max: 1e9 }), type: fc.stringMatching(/^[a-z][a-z-]{0,12}$/), data: fc.jsonValue({ maxDepth: 2 }) });
  const streamOf = (chunks: readonly Uint8Array[]) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        for (const ch of chunks) c.enqueue(ch);
        c.close();
      },
    });
  /** the bytes cut at arbitrary points (inside a UTF-8 sequence too) */
  const cut = (bytes: Uint8Array, at: readonly number[]) => {
    const points = [...new Set(at.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
    const out: Uint8Array[] = [];
    let from = 0;
    for (const p of [...points, bytes.length]) {
      out.push(bytes.subarray(from, p));
      from = p;
    }
    return out;
  };
  const collect = async (chunks: readonly Uint8Array[]) => {
    const got: SseEvent[] = [];
    for await (const e of parseSse(streamOf(chunks))) got.push(e);
    return got;
  };

  it('parseSse: events written by the server come back whole, however the bytes are cut, with comments and CRLF', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(eventArb, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), fc.boolean(), async (events, at, crlf) => {
        const nl = crlf ? '\r\n' : '\n';
        const text = events.map((e) => `: keepalive${nl}id: ${e.id}${nl}event: ${e.type}${nl}data: ${JSON.stringify(e.data)}${nl}${nl}`).join('');
        const got = await collect(cut(new TextEncoder().encode(text), at));
        expect(got).toEqual(events.map((e) => ({ id: e.id, type: e.type, data: JSON.parse(JSON.stringify(e.data)) as unknown })));
      }),
      { numRuns: RUNS },
    );
  });

  it('parseSse: random bytes never throw (below its size cap), and every event it yields is well formed', async () => {
    const noise = fc.array(
      fc.oneof(
        fc.uint8Array({ maxLength: 64 }),
        fc.constantFrom('id: 7\n', 'event: x\n', 'data: {}\n', '\n', '\r\n', 'id: NaN\n', 'data: {\n').map((s) => new TextEncoder().encode(s)),
      ),
      { maxLength: 30 },
    );
    await fc.assert(
      fc.asyncProperty(noise, async (chunks) => {
        for (const e of await collect(chunks)) {
          expect(Number.isFinite(e.id)).toBe(true);
          expect(typeof e.type).toBe('string');
          expect(e.type).not.toBe('');
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('verifyWebhookSignature: random headers never verify; the signature the secret gives does, within the tolerance only', () => {
    const secret = 's3cret-of-the-farm';
    const now = 1_800_000_000;
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom(WEBHOOK_HEADERS.timestamp, WEBHOOK_HEADERS.signature, 'X-Kfarm-Signature', 'x-other'),
          fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }), fc.stringMatching(/^sha256=[0-9a-f]{64}$/), fc.constant(String(now))),
        ),
        fc.string(),
        fc.integer({ min: -1000, max: 1000 }),
        (headers, body, skew) => {
          expect(verifyWebhookSignature(secret, headers, body, { nowSec: now }).ok).toBe(false);
          // signed with another secret: refused
          const ts = now + skew;
          expect(
            verifyWebhookSignature(secret, { [WEBHOOK_HEADERS.timestamp]: String(ts), [WEBHOOK_HEADERS.signature]: signWebhook('other', ts, body) }, body, { nowSec: now }).ok,
          ).toBe(false);
          const v = verifyWebhookSignature(secret, { [WEBHOOK_HEADERS.timestamp]: String(ts), [WEBHOOK_HEADERS.signature]: signWebhook(secret, ts, body) }, body, { nowSec: now });
          expect(v.ok).toBe(ts >= 0 && Math.abs(skew) <= 300);
          // the body changed by one character: refused
          expect(
            verifyWebhookSignature(secret, { [WEBHOOK_HEADERS.timestamp]: String(ts), [WEBHOOK_HEADERS.signature]: signWebhook(secret, ts, body) }, `${body}x`, { nowSec: now }).ok,
          ).toBe(false);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('planWatch: syncs only new kernels not held, builds only new held kernels a module has no result for, never a busy module, and never a baseline kernel', () => {
    const kernel = fc.constantFrom('6.1.0-1-amd64', '6.1.0-2-amd64', '6.1.0-3-cloud-amd64', '6.12.1+deb13-arm64', '6.1.0-4-rt-amd64');
    const time = fc.constantFrom('2026-01-01', '2026-01-02', '2026-01-03');
    const seenRow = fc
      .record({ kernel, firstSeen: time, flavour: fc.constantFrom('amd64', 'cloud-amd64', 'arm64') })
      .map((r) => ({ ...r, release: 'debian-12', arch: 'x86_64', version: '1', lastSeen: r.firstSeen }) satisfies KernelSeenRow);
    const modName = fc.constantFrom('hello', 'world', 'zfs');
    const moduleRow = fc
      .record({ name: modName, version: fc.constantFrom('1.0', '2.0') })
      .map((r) => ({ ...r, sourceSha256: 'a'.repeat(64), settings: {}, createdAt: '', updatedAt: '' }) as unknown as ModuleRow);
    const resultRow = fc
      .record({ module: modName, version: fc.constantFrom('1.0', '2.0'), kernel })
      .map((r) => ({ ...r, buildId: 'b', release: 'debian-12', arch: 'x86_64', flavour: 'amd64', verdict: 'built' }) as ResultRow);
    fc.assert(
      fc.property(
        fc.array(seenRow, { maxLength: 8 }),
        fc.subarray(['amd64', 'cloud-amd64', 'arm64']),
        fc.uniqueArray(kernel),
        fc.uniqueArray(moduleRow, { selector: (m) => m.name }),
        fc.array(resultRow, { maxLength: 8 }),
        fc.subarray(['hello', 'world', 'zfs']),
        (seen, flavours, held, modules, results, busy) => {
          const byModule = new Map<string, ResultRow[]>();
          for (const r of results) byModule.set(r.module, [...(byModule.get(r.module) ?? []), r]);
          const unfinished = busy.map((module) => ({ module }) as BuildRow);
          const plan = planWatch({ seen, flavours, held: new Set(held), modules, results: byModule, unfinished });
          const baseline = seen.reduce((min, k) => (k.firstSeen < min ? k.firstSeen : min), seen[0]?.firstSeen ?? '');
          const isNew = (k: string) => seen.some((s) => s.kernel === k && s.firstSeen > baseline && (flavours.length === 0 || flavours.includes(s.flavour)));
          for (const k of plan.sync) {
            expect(held).not.toContain(k);
            expect(isNew(k)).toBe(true);
          }
          for (const b of plan.builds) {
            expect(busy).not.toContain(b.module.name);
            expect(b.kernels.length).toBeGreaterThan(0);
            for (const k of b.kernels) {
              expect(held).toContain(k);
              expect(isNew(k)).toBe(true);
              expect(results.some((r) => r.module === b.module.name && r.version === b.module.version && r.kernel === k)).toBe(false);
            }
          }
          // and nothing new is forgotten: every new held kernel is built by every idle module lacking it
          for (const m of modules.filter((m) => !busy.includes(m.name)))
            for (const k of held.filter(isNew))
              if (!results.some((r) => r.module === m.name && r.version === m.version && r.kernel === k)) expect(plan.builds.find((b) => b.module === m)?.kernels).toContain(k);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
