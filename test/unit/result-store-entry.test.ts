import { describe, expect, it } from 'vitest';
import { entryBlobs, makeEntry, parseEntry } from '../../src/store/store-entry.js';
import { builtModule, kernelRecord } from '../helpers/kernel-record.js';

const key = 'a'.repeat(64);
const log = { sha256: 'b'.repeat(64), size: 5 };
const ko = { sha256: 'c'.repeat(64), size: 7 };
const record = kernelRecord({ packageName: 'hello', packageVersion: '1.0.0', modules: [builtModule('hello', ko)], makeLog: log, log, durationMs: 12, worker: 'w' });

describe('result store entries', () => {
  it('an entry written is read back whole', () => {
    const text = JSON.stringify(makeEntry(key, record, new Date(0)));
    const parsed = parseEntry(text, key);
    expect('entry' in parsed && parsed.entry.record).toEqual(record);
  });

  it('lists each blob once (the log and make log may be the same)', () => {
    expect(entryBlobs(record)).toEqual([log, ko]);
  });

  it('a torn, edited, foreign or ill-formed entry is invalid, never a result', () => {
    const good = JSON.stringify(makeEntry(key, record, new Date(0)));
    expect(parseEntry(good.slice(0, good.length - 10), key)).toEqual({ invalid: expect.stringMatching(/not JSON/) });
    expect(parseEntry(good.replace('"built"', '"failed"'), key)).toEqual({ invalid: expect.stringMatching(/digest mismatch/) });
    expect(parseEntry(good.replace(ko.sha256, 'd'.repeat(64)), key)).toEqual({ invalid: expect.stringMatching(/digest mismatch/) });
    expect(parseEntry(good, 'e'.repeat(64))).toEqual({ invalid: 'names another job' });
    const badName = JSON.stringify(makeEntry(key, { ...record, packageName: '../etc' }, new Date(0)));
    expect(parseEntry(badName, key)).toEqual({ invalid: expect.stringMatching(/entry schema/) });
    expect(parseEntry('{}', key)).toEqual({ invalid: expect.stringMatching(/entry schema/) });
  });
});
