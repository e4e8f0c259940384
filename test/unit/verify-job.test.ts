import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { seal } from '../../src/queue/record-seal.js';
import { openVerifyResult } from '../../src/queue/verify-queue.js';
import {
  bootAccel,
  loadFromResult,
  parseVerifyLanes,
  routeBoot,
  usableLanes,
  verifyJobId,
  verifyPayloadSchema,
  verifyQueueName,
  verifyResultSchema,
} from '../../src/job/verify-job.js';

const sha = 'a'.repeat(64);
const payload = {
  schemaVersion: 1,
  kernel: '6.1.0-57-amd64',
  arch: 'x86_64',
  release: 'debian-12',
  debianArch: 'amd64',
  modules: [{ sha256: sha, size: 4096, installLocation: '/updates/dkms', fileName: 'hello.ko' }],
  cmdline: 'module.sig_enforce=1',
  accel: 'auto',
  timeoutSec: 300,
  requestId: 'ab'.repeat(16),
  run: 'ef'.repeat(16),
};
const result = { schemaVersion: 1, load: { verdict: 'loaded', accel: 'kvm', bootMs: 812, loadMs: 14 }, console: { sha256: sha, size: 10 }, wallMs: 2500, worker: 'host:1' };

describe('routing a boot', () => {
  it("kvm and tcg go where asked; auto goes to the KVM lane only when a KVM worker exists and the arch is the host's", () => {
    expect(routeBoot('tcg', { kvmWorker: true, tcgWorker: true, arch: 'x86_64', hostArch: 'x86_64' })).toBe('tcg');
    expect(routeBoot('kvm', { kvmWorker: false, tcgWorker: true, arch: 'x86_64', hostArch: 'x86_64' })).toBe('kvm');
    expect(routeBoot('auto', { kvmWorker: true, tcgWorker: true, arch: 'x86_64', hostArch: 'x86_64' })).toBe('kvm');
    expect(routeBoot('auto', { kvmWorker: false, tcgWorker: true, arch: 'x86_64', hostArch: 'x86_64' })).toBe('tcg');
    expect(routeBoot('auto', { kvmWorker: true, tcgWorker: true, arch: 'aarch64', hostArch: 'x86_64' })).toBe('tcg');
    // only KVM workers: they boot a foreign arch under TCG themselves
    expect(routeBoot('auto', { kvmWorker: true, tcgWorker: false, arch: 'aarch64', hostArch: 'x86_64' })).toBe('kvm');
  });
  it('a run routes only to lanes a live worker consumes and, when given, a live advert names', () => {
    const set = (...lanes: Array<'kvm' | 'tcg'>) => new Set(lanes);
    // a worker that died within its advert's TTL still has an advert, but no connection: not usable
    expect(usableLanes(set('tcg'), set('kvm', 'tcg'))).toEqual(set('tcg'));
    // a worker whose KVM cannot boot a guest still drains the KVM lane but no longer advertises it
    expect(usableLanes(set('kvm', 'tcg'), set('tcg'))).toEqual(set('tcg'));
    expect(usableLanes(set('kvm', 'tcg'))).toEqual(set('kvm', 'tcg'));
    expect(usableLanes(set(), set('kvm', 'tcg'))).toEqual(set());
  });
  it('a worker on the TCG lane always boots under TCG; on the KVM lane as asked', () => {
    expect(bootAccel('tcg', 'auto')).toBe('tcg');
    expect(bootAccel('kvm', 'auto')).toBe('auto');
    expect(bootAccel('kvm', 'kvm')).toBe('kvm');
  });
  it('queues per lane, and --verify lists', () => {
    expect(verifyQueueName('kfarm-builds', 'kvm')).toBe('kfarm-builds-verify-kvm');
    expect(parseVerifyLanes('kvm,tcg')).toEqual(['kvm', 'tcg']);
    expect(parseVerifyLanes(' tcg ')).toEqual(['tcg']);
    expect(parseVerifyLanes('none')).toEqual([]);
    expect(() => parseVerifyLanes('gpu')).toThrow(/--verify takes/);
    expect(() => parseVerifyLanes('')).toThrow(/--verify takes/);
  });
});

describe('the verify payload', () => {
  it('a good payload passes; its job id is its hash, another request another id', () => {
    const p = verifyPayloadSchema.parse(payload);
    expect(verifyJobId(p)).toMatch(/^[0-9a-f]{64}$/);
    expect(verifyJobId({ ...p, requestId: 'cd'.repeat(16) })).not.toBe(verifyJobId(p));
  });
  it.each([
    ['a module file name with a path', { modules: [{ ...payload.modules[0], fileName: '../../etc/passwd' }] }],
    ['a file that is no module', { modules: [{ ...payload.modules[0], fileName: 'hello.sh' }] }],
    ['an install location climbing out', { modules: [{ ...payload.modules[0], installLocation: '/../../root' }] }],
    ['no modules', { modules: [] }],
    ['a bad sha256', { modules: [{ ...payload.modules[0], sha256: 'zz' }] }],
    ['a kernel name with a slash', { kernel: '6.1/../x' }],
    ['an unknown accel', { accel: 'hvf' }],
    ['a command line with a newline', { cmdline: 'quiet\ninit=/bin/sh' }],
    ['another schema version', { schemaVersion: 2 }],
    ["no run (its lease is what makes a dead run's boots expire)", { run: undefined }],
  ])('refuses %s', (_what, change) => {
    expect(verifyPayloadSchema.safeParse({ ...payload, ...change }).success).toBe(false);
  });
});

describe('the verify result at the border', () => {
  const key = randomBytes(32);
  const jobId = 'f'.repeat(64);
  it('a sealed, well-formed result opens; only the load figures are taken from it', () => {
    const opened = openVerifyResult(key, jobId, { result, seal: seal(key, 'verify-result', jobId, result) });
    expect('result' in opened).toBe(true);
    if (!('result' in opened)) return;
    expect(loadFromResult(opened.result)).toEqual({ verdict: 'loaded', accel: 'kvm', bootMs: 812, loadMs: 14 });
  });
  it('an unsealed result, one sealed with another key, for another job or as another kind is refused', () => {
    expect(openVerifyResult(key, jobId, { result })).toMatchObject({ error: expect.stringMatching(/integrity/) });
    expect(openVerifyResult(key, jobId, { result, seal: seal(randomBytes(32), 'verify-result', jobId, result) })).toMatchObject({ error: expect.stringMatching(/integrity/) });
    expect(openVerifyResult(key, jobId, { result, seal: seal(key, 'verify-result', 'e'.repeat(64), result) })).toMatchObject({ error: expect.stringMatching(/integrity/) });
    expect(openVerifyResult(key, jobId, { result, seal: seal(key, 'record', jobId, result) })).toMatchObject({ error: expect.stringMatching(/integrity/) });
    expect(openVerifyResult(key, jobId, 'loaded')).toMatchObject({ error: expect.stringMatching(/integrity/) });
  });
  it('a sealed result outside the vocabulary is refused (a worker holding the key still cannot invent verdicts or fields)', () => {
    for (const bad of [
      { ...result, load: { ...result.load, verdict: 'probably-fine' } },
      { ...result, load: { ...result.load, reason: 'because' } },
      { ...result, load: { ...result.load, log: '/etc/shadow' } },
      { ...result, load: { ...result.load, kernel: '6.12.117+deb12-amd64' } },
      { ...result, load: { ...result.load, bootMs: -1 } },
    ]) {
      expect(openVerifyResult(key, jobId, { result: bad, seal: seal(key, 'verify-result', jobId, bad) })).toMatchObject({ error: expect.stringMatching(/unreadable/) });
    }
  });
  it('free text is cleaned and capped', () => {
    const parsed = verifyResultSchema.parse({
      ...result,
      load: { verdict: 'load-failed', reason: 'unknown-symbol', firstError: `hello: Unknown symbol \x1b[31mfoo${'x'.repeat(5000)}` },
    });
    expect(parsed.load.firstError).not.toContain('\x1b');
    expect(parsed.load.firstError?.length).toBeLessThanOrEqual(1024);
  });
});
