import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../../src/queue/private-redis.js';
import { openFarmDb } from '../../src/service/db/open-farm-db.js';
import type { BuildRow, FarmDb, ResultRow } from '../../src/service/farm-db.js';
import { afterBuild, apiReportPath } from '../../src/service/findings/after-build.js';
import { parseWebhookEvent, type WebhookEvent } from '../../src/service/notify/webhook-event.js';
import { createWebhookNotifier, type WebhookNotifier } from '../../src/service/notify/webhook-notifier.js';
import { verifyWebhookSignature } from '../../src/service/notify/webhook-signature.js';
import { tempDir } from '../helpers/kfarm-cli.js';

/**
 * kfarm serve's onFinished hook against the real pieces: the SQLite farm database, the webhook
 * notifier on a real redis-server, a real HTTP receiver on 127.0.0.1. Builds are recorded as the
 * runner records them (results, then the row done); what the receiver gets is what changed.
 */
const K56 = '6.1.0-56-amd64';
const K57 = '6.1.0-57-amd64';
const K58 = '6.1.0-58-amd64';
const SHA = 'a'.repeat(64);

const secret = randomBytes(32).toString('hex');
let redis: PrivateRedis;
let db: FarmDb;
let server: http.Server;
let notifier: WebhookNotifier;
const received: WebhookEvent[] = [];
let logLines: Array<{ level: number; msg: string; err?: string }> = [];
const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line) as (typeof logLines)[number]) });
let after: (build: BuildRow) => void;

beforeAll(async () => {
  const dir = await tempDir('after-build');
  redis = await startPrivateRedis(dir, pino({ level: 'silent' }));
  const secretFile = path.join(dir, 'webhook.secret');
  await writeFile(secretFile, `${secret}\n`, { mode: 0o600 });
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      // a delivery that does not verify is not the farm's: refused, and the test sees it missing
      if (!verifyWebhookSignature(secret, req.headers, body).ok) return res.writeHead(401).end();
      received.push(parseWebhookEvent(body));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  notifier = await createWebhookNotifier({
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    secretFile,
    connection: redis.target,
    queueName: `test-after-build-${process.pid}`,
    logger,
    backoffMs: 50,
  });
  db = openFarmDb(path.join(dir, 'farm.sqlite'));
  after = afterBuild({ db, notify: (e) => notifier.notify(e), logger, reportPath: apiReportPath });
}, 30_000);

afterAll(async () => {
  await notifier?.close();
  db?.close();
  await new Promise((resolve) => server?.close(resolve));
  await redis?.stop();
}, 30_000);

let minute = 0;
/** a build of hello recorded as the runner records it: its results, then the row done */
function recordBuild(cells: Array<[string, ResultRow['verdict']]>, opts: { oneOff?: boolean } = {}): BuildRow {
  const row = db.builds.create({ ...(opts.oneOff ? {} : { module: 'hello' }), sourceSha256: SHA, kernels: cells.map((c) => c[0]).join(','), formats: [], trigger: 'api' });
  const at = new Date(Date.UTC(2026, 10, 1, 0, ++minute)).toISOString();
  db.results.record(
    cells.map(([kernel, verdict]) => ({
      buildId: row.id,
      module: 'hello',
      version: '1.0',
      kernel,
      release: 'debian-12',
      arch: 'x86_64',
      flavour: 'amd64',
      verdict,
      ...(verdict === 'failed' ? { reason: 'make-failed', firstError: `hello.c:3:1: error: ${kernel} changed struct foo` } : {}),
      at,
    })),
  );
  return db.builds.update(row.id, { state: 'done', finishedAt: at, exitCode: cells.some((c) => c[1] === 'failed') ? 1 : 0 });
}

async function waitFor(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`waited ${ms} ms for ${what}; received ${JSON.stringify(received.map((e) => e.type))}; log:\n${logLines.map((l) => `${l.msg} ${l.err ?? ''}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
/** long enough for a stray delivery (retries back off from 50 ms) to arrive */
const settle = () => new Promise((r) => setTimeout(r, 1500));
const newFailures = (kernel: string) => received.filter((e) => e.type === 'new-failure' && e.kernel === kernel);

describe('afterBuild: a finished build, told to a webhook', () => {
  it('a new failure is delivered exactly once over two builds (and a resumed build stating it again), with the build, the regression and the report path', async () => {
    const first = recordBuild([
      [K56, 'built'],
      [K57, 'failed'],
    ]);
    after(first);
    await waitFor('three events', () => received.length >= 3);
    expect(received.map((e) => e.type).sort()).toEqual(['kernel-built', 'new-failure', 'regression']);
    expect(newFailures(K57)[0]).toMatchObject({ buildId: first.id, reportPath: `/api/v1/builds/${first.id}/report`, firstError: `hello.c:3:1: error: ${K57} changed struct foo` });
    expect(received.find((e) => e.type === 'regression')).toMatchObject({ lastGood: { kernel: K56 }, firstBad: { kernel: K57 }, sentence: `builds on ${K56}, fails since ${K57}` });

    // the same verdicts again (the result store answers them), and the first build's hook once more (a resume)
    const second = recordBuild([
      [K56, 'built'],
      [K57, 'failed'],
    ]);
    after(second);
    after(first);
    await settle();
    expect(newFailures(K57)).toHaveLength(1);
    expect(received).toHaveLength(3);
  }, 30_000);

  it('a further kernel failing in the open regression: its own new failure, no second regression', async () => {
    const before = received.length;
    after(
      recordBuild([
        [K57, 'failed'],
        [K58, 'failed'],
      ]),
    );
    await waitFor('the new failure of 58', () => newFailures(K58).length === 1);
    await settle();
    expect(received.slice(before).map((e) => e.type)).toEqual(['new-failure']);
    expect(newFailures(K57)).toHaveLength(1);
  }, 30_000);

  it('a one-off source build (no registered module) tells nothing', async () => {
    const before = received.length;
    after(recordBuild([['6.1.0-59-amd64', 'failed']], { oneOff: true }));
    await settle();
    expect(received.slice(before)).toEqual([]);
  }, 30_000);

  it('never throws into the runner: a database that cannot be read is logged', async () => {
    const dir = await tempDir('after-build-closed');
    const closed = openFarmDb(path.join(dir, 'farm.sqlite'));
    const build = closed.builds.create({ module: 'hello', sourceSha256: SHA, kernels: K56, formats: [], trigger: 'api' });
    const done = closed.builds.update(build.id, { state: 'done' });
    closed.close();
    logLines = [];
    expect(() => afterBuild({ db: closed, notify: (e) => notifier.notify(e), logger, reportPath: apiReportPath })(done)).not.toThrow();
    expect(logLines.some((l) => l.level === 50 && /could not tell what the build changed/.test(l.msg))).toBe(true);
  });
});
