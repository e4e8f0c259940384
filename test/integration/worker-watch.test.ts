import { execa, type ResultPromise } from 'execa';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { closeConnection, connectChecked } from '../../src/queue/redis-connection.js';
import { startAdvertising } from '../../src/queue/worker-registry.js';
import { goneWorkers, startWorkerWatch } from '../../src/service/watch/worker-watch.js';

/** kfarm serve's farm fault "a worker gone": a real redis-server on loopback, real adverts. */
const port = 30000 + (process.pid % 9000);
let server: ResultPromise | undefined;

afterAll(async () => {
  server?.kill('SIGKILL');
  await server;
});

const advert = (worker: string) => ({ worker, hostname: `${worker}-host`, pid: 1, concurrency: 2, images: [] });

describe('the worker watch', () => {
  it('tells a worker that stopped advertising once, and nothing of one that stays', async () => {
    server = execa('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], { reject: false });
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

  it('goneWorkers compares by worker id', () => {
    const at = (w: string) => ({ ...advert(w), seenAt: 't' });
    expect(goneWorkers([at('a'), at('b')], [at('b'), at('c')]).map((w) => w.worker)).toEqual(['a']);
  });
});
