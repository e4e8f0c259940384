import { createHash } from 'node:crypto';
import { readFile, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import type { KernelRecord } from '../../src/job/job-payload.js';
import { ResultStore } from '../../src/store/result-store.js';
import { builtModule, kernelRecord } from '../helpers/kernel-record.js';
import { tempDir } from '../helpers/kfarm-cli.js';

const packageRoot = path.resolve(import.meta.dirname, '..', '..');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const keyOf = (n: number) => sha(Buffer.from(`job ${n}`));

/** A result whose log and module are real bytes: `size` bytes of module. */
function result(n: number, size = 1000): { record: KernelRecord; files: Map<string, Buffer> } {
  const logData = Buffer.from(`log of job ${n}\n`);
  const ko = Buffer.alloc(size, n % 251);
  ko.write(`module ${n}`);
  const log = { sha256: sha(logData), size: logData.length };
  const file = { sha256: sha(ko), size: ko.length };
  const record = kernelRecord({ packageName: 'hello', packageVersion: '1.0.0', modules: [builtModule('hello', file)], log, durationMs: 1, worker: 'w' });
  return {
    record,
    files: new Map([
      [log.sha256, logData],
      [file.sha256, ko],
    ]),
  };
}

const blobFile = (store: ResultStore, sha256: string) => path.join(store.dir, 'blobs', sha256.slice(0, 2), sha256);
const entryFile = (store: ResultStore, key: string) => path.join(store.dir, 'entries', key.slice(0, 2), `${key}.json`);

describe('result store on disk', () => {
  it('a result put is got back with its blobs, and a hit marks it used', async () => {
    const store = new ResultStore(await tempDir('store-rt'), 1e9);
    const r = result(1);
    await store.put(keyOf(1), r.record, r.files);
    await utimes(entryFile(store, keyOf(1)), new Date(1000), new Date(1000));
    const got = await store.get(keyOf(1));
    expect(got?.record).toEqual(r.record);
    expect(got?.files).toEqual(r.files);
    expect((await stat(entryFile(store, keyOf(1)))).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
    expect(await store.get(keyOf(2))).toBeUndefined();
  });

  it('a truncated blob is a miss: not served, the entry removed, so the job is built again', async () => {
    const store = new ResultStore(await tempDir('store-trunc'), 1e9);
    const r = result(2);
    await store.put(keyOf(2), r.record, r.files);
    const ko = r.record.modules[0]?.file?.sha256 as string;
    await truncate(blobFile(store, ko), 10);
    expect(await store.get(keyOf(2))).toBeUndefined();
    await expect(stat(entryFile(store, keyOf(2)))).rejects.toThrow(/ENOENT/);
    await expect(stat(blobFile(store, ko))).rejects.toThrow(/ENOENT/);
    // put again (the rebuild) and it is whole again
    await store.put(keyOf(2), r.record, r.files);
    expect((await store.get(keyOf(2)))?.files.get(ko)).toEqual(r.files.get(ko));
  });

  it('a blob corrupted in place (same size) is a miss, and cache verify finds it', async () => {
    const store = new ResultStore(await tempDir('store-flip'), 1e9);
    const a = result(3);
    const b = result(4);
    await store.put(keyOf(3), a.record, a.files);
    await store.put(keyOf(4), b.record, b.files);
    const ko = a.record.modules[0]?.file?.sha256 as string;
    const data = await readFile(blobFile(store, ko));
    data[500] = (data[500] ?? 0) ^ 0xff;
    await writeFile(blobFile(store, ko), data);
    const checked = await store.verify();
    expect(checked.corrupt).toHaveLength(2); // the blob, and the entry that needs it
    expect(checked.corrupt.join('\n')).toMatch(new RegExp(`blob ${ko.slice(0, 12)}`));
    expect(await store.get(keyOf(3))).toBeUndefined();
    expect((await store.get(keyOf(4)))?.record).toEqual(b.record);
    expect((await store.verify()).corrupt).toEqual([]);
  });

  it('a torn entry file is a miss and is removed', async () => {
    const store = new ResultStore(await tempDir('store-torn'), 1e9);
    const r = result(5);
    await store.put(keyOf(5), r.record, r.files);
    const text = await readFile(entryFile(store, keyOf(5)), 'utf8');
    await writeFile(entryFile(store, keyOf(5)), text.slice(0, text.length / 2));
    expect(await store.get(keyOf(5))).toBeUndefined();
    await expect(stat(entryFile(store, keyOf(5)))).rejects.toThrow(/ENOENT/);
  });

  it('evicts the least recently used down to its bound', async () => {
    const dir = await tempDir('store-lru');
    const unbounded = new ResultStore(dir, 1e9);
    for (const n of [10, 11, 12]) {
      const r = result(n, 1500);
      await unbounded.put(keyOf(n), r.record, r.files);
      await utimes(entryFile(unbounded, keyOf(n)), new Date(n * 1000), new Date(n * 1000));
    }
    // room for three such results, not four
    const bound = (await unbounded.size()) + 100;
    const store = new ResultStore(dir, bound);
    await store.get(keyOf(10)); // used now: 11 is the oldest
    const r = result(13, 1500);
    await store.put(keyOf(13), r.record, r.files);
    expect(await store.size()).toBeLessThanOrEqual(bound);
    expect(await store.get(keyOf(11))).toBeUndefined();
    expect(await store.get(keyOf(10))).toBeDefined();
    expect(await store.get(keyOf(13))).toBeDefined();
  });

  it('the bound holds with two processes putting at once, and every entry left is whole', async () => {
    const dir = await tempDir('store-concurrent');
    const bound = 40_000;
    // the other process runs the compiled store (npm run build) on the same directory
    const script = `
      import { createHash } from 'node:crypto';
      import { ResultStore } from ${JSON.stringify(path.join(packageRoot, 'lib', 'src', 'store', 'result-store.js'))};
      const sha = (b) => createHash('sha256').update(b).digest('hex');
      const store = new ResultStore(${JSON.stringify(dir)}, ${bound});
      for (let n = 1000; n < 1040; n++) {
        const ko = Buffer.alloc(2000, n % 251); ko.write('other ' + n);
        const logData = Buffer.from('log ' + n);
        const log = { sha256: sha(logData), size: logData.length };
        const file = { sha256: sha(ko), size: ko.length };
        const record = { schemaVersion: 1, kernel: '6.1.0-56-amd64', arch: 'amd64', image: 'debian-12', verdict: 'built', modules: [{ builtName: 'hello', destName: 'hello', destLocation: '/updates/dkms', installLocation: '/updates/dkms', file }], log, logTruncated: false, durationMs: 1, worker: 'w', finishedAt: 'x', cacheable: true };
        await store.put(sha(Buffer.from('job ' + n)), record, new Map([[log.sha256, logData], [file.sha256, ko]]));
      }`;
    const other = execa('node', ['--input-type=module', '-e', script]);
    const store = new ResultStore(dir, bound);
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const r = result(100 + i, 2000);
        await store.put(keyOf(100 + i), r.record, r.files);
      }),
    );
    await other;
    expect(await store.size()).toBeLessThanOrEqual(bound);
    expect((await store.verify()).corrupt).toEqual([]);
    expect((await store.list()).length).toBeGreaterThan(5);
  });
});
