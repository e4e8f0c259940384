import { execa, type ResultPromise } from 'execa';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeConnection, connectChecked } from '../../src/queue/redis-connection.js';
import { startAdvertising } from '../../src/queue/worker-registry.js';
import { goneWorkers, startWorkerWatch } from '../../src/service/watch/worker-watch.js';

/** kfarm serve's farm fault "a worker gone": a real redis-server on loopback, real adverts. */
const port = 30000 + (process.pid % 9000);
let server: ResultPromise | undefined;

beforeAll(() => {
  server = execa('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], { reject: false });
});

afterAll(async () => {
  server?.kill('SIGKILL');
  await server;
});

const advert = (worker: string) => ({ worker, hostname: `${worker}-host`, pid: 1, concurrency: 2, images: [] });

describe('the worker watch', () => {
  it('tells a worker that stopped advertising once, and nothing of one that stays', async () => {
    const target = { url: `redis://127.0.0.1:${port}` };
    let redis;
    for (let i = 0; i < 50 && !redis; i++) redis = await connectChecked(target, 500).catch(async () => new Promise<undefined>((r) => setTimeout(() => r(undefined), 100)));
    if (!redis) throw new Error('redis-server did not start');
    const logger = pino({ level: 'silent' });
    const a = await startAdvertising(redis, 'q', async () => Promise.resolve(advert('a')), logger);
    const b = await startAdvertising(redis, 'q', async () => Promise.resolve(advert('b')), logger);
    const gone: string[] = [];
    const watch = startWorkerWatch({ target, queueName: 'q', logger, everyMs: 100, onGone: (w) => gone.push(w.worker) });
    await new Promise((r) => setTimeout(r, 300));
    expect(gone).toEqual([]);
    await a.stop();
    await new Promise((r) => setTimeout(r, 500));
    expect(gone).toEqual(['a']);
    await watch.close();
    await b.stop();
    closeConnection(redis);
  });

  it('lists the workers live with the builds they run now (an advert says it again at once when that changes), then gone once the advert is withdrawn', async () => {
    const target = { url: `redis://127.0.0.1:${port}` };
    const redis = await connectChecked(target, 2000); // the server the test above waited for
    const logger = pino({ level: 'silent' });
    let running = 0;
    const w = await startAdvertising(
      redis,
      'roster',
      async () =>
        Promise.resolve({ ...advert('w1'), running, images: [{ name: 'debian-12', ref: 'kfarm/debian-12:k', id: 'sha256:1', arch: 'x86_64', kernels: ['6.1.0-42-amd64'] }] }),
      logger,
    );
    const watch = startWorkerWatch({ target, queueName: 'roster', logger, everyMs: 100 });
    const until = async (what: string, ok: () => boolean) => {
      for (let i = 0; i < 50 && !ok(); i++) await new Promise((r) => setTimeout(r, 100));
      expect(ok(), `${what}: ${JSON.stringify(watch.workers())}`).toBe(true);
    };
    await until('w1 live, running nothing', () => watch.workers()[0]?.state === 'live' && watch.workers()[0]?.running === 0);
    expect(watch.workers()).toMatchObject([{ worker: 'w1', host: 'w1-host', concurrency: 2, images: [{ name: 'debian-12', arch: 'x86_64', kernels: ['6.1.0-42-amd64'] }] }]);
    // a build starts there: the advert renews every 20 s, the refresh says it within the second
    running = 2;
    const asked = Date.now();
    w.refresh();
    await until('w1 running 2', () => watch.workers()[0]?.running === 2);
    expect(Date.now() - asked).toBeLessThan(5000);
    await w.stop();
    await until('w1 gone', () => watch.workers()[0]?.state === 'gone');
    expect(watch.workers()[0]).toMatchObject({ worker: 'w1', running: 0, state: 'gone' });
    await watch.close();
    closeConnection(redis);
  });

  it('goneWorkers compares by worker id', () => {
    const at = (w: string) => ({ ...advert(w), seenAt: 't' });
    expect(goneWorkers([at('a'), at('b')], [at('b'), at('c')]).map((w) => w.worker)).toEqual(['a']);
  });
});
