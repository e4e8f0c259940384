import { describe, expect, it } from 'vitest';
import { seal, verifySeal } from '../../src/queue/record-seal.js';

const key = Buffer.from('a farm key of at least sixteen bytes');
const other = Buffer.from('another farm key, also long enough');
const record = { kernel: '6.1.0-56-amd64', verdict: 'built', modules: [{ destName: 'hello', file: { sha256: 'ab'.repeat(32), size: 3 } }], logTruncated: false };

describe('record seals', () => {
  it('a seal made with the farm key verifies for the same job and value, whatever the key order', () => {
    const s = seal(key, 'record', 'job-1', record);
    expect(s).toMatch(/^[0-9a-f]{64}$/);
    const reordered = { logTruncated: false, modules: record.modules, verdict: 'built', kernel: '6.1.0-56-amd64' };
    expect(verifySeal(key, 'record', 'job-1', reordered, s)).toBe(true);
    // what BullMQ does to it on the way through Redis
    expect(verifySeal(key, 'record', 'job-1', JSON.parse(JSON.stringify(record)), s)).toBe(true);
  });

  it('fails for another key, another job, another kind, or any change to the value', () => {
    const s = seal(key, 'record', 'job-1', record);
    expect(verifySeal(other, 'record', 'job-1', record, s)).toBe(false);
    expect(verifySeal(key, 'record', 'job-2', record, s)).toBe(false);
    expect(verifySeal(key, 'payload', 'job-1', record, s)).toBe(false);
    expect(verifySeal(key, 'record', 'job-1', { ...record, verdict: 'failed' }, s)).toBe(false);
    const swapped = { ...record, modules: [{ ...record.modules[0], file: { sha256: 'cd'.repeat(32), size: 3 } }] };
    expect(verifySeal(key, 'record', 'job-1', swapped, s)).toBe(false);
  });

  it('a missing or malformed seal fails instead of throwing', () => {
    for (const claimed of [undefined, null, '', 'zz', 42, 'ab'.repeat(31), { seal: 'x' }]) {
      expect(verifySeal(key, 'record', 'job-1', record, claimed)).toBe(false);
    }
    expect(verifySeal(key, 'record', 'job-1', undefined, seal(key, 'record', 'job-1', record))).toBe(false);
  });
});
