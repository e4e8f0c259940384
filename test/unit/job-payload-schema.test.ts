import { describe, expect, it } from 'vitest';
import { buildOptions } from '../../src/config/build-options.js';
import { jobPayloadSchema, kernelRecordSchema, type JobPayload, type KernelRecord } from '../../src/job/job-payload.js';

const SHA = 'a'.repeat(64);
const payload: JobPayload = {
  schemaVersion: 1,
  sourceSha256: SHA,
  kernel: '6.12.117+deb12-amd64',
  arch: 'x86_64',
  image: 'debian-12',
  imageRef: 'kfarm/debian-12:latest',
  imageId: `sha256:${'b'.repeat(64)}`,
  driverSha256: 'c'.repeat(64),
  options: buildOptions(),
  buildId: 'hello-m1abc',
};
const record: KernelRecord = {
  schemaVersion: 1,
  kernel: '6.1.0-56-amd64',
  arch: 'x86_64',
  image: 'debian-12',
  verdict: 'built',
  packageName: 'hello',
  packageVersion: '1.0.0~rc1+dfsg',
  modules: [{ builtName: 'hello', destName: 'hello', destLocation: '/extra', installLocation: '/updates/dkms', file: { sha256: SHA, size: 10 } }],
  log: { sha256: SHA, size: 1 },
  logTruncated: false,
  durationMs: 1200,
  worker: 'host-1',
  attempt: 1,
  finishedAt: '2026-11-26T00:00:00.000Z',
  cacheable: true,
};

describe('the job payload schema: a worker refuses a payload whose names are not names', () => {
  it('accepts what the coordinator sends', () => {
    expect(jobPayloadSchema.safeParse(payload).success).toBe(true);
  });

  it.each([
    ['kernel', '../../etc'],
    ['kernel', '6.1.0/x'],
    ['kernel', '6.1.0\n-amd64'],
    ['arch', 'x86_64/../..'],
    ['image', '../debian'],
    ['imageRef', 'kfarm/debian-12:latest; rm -rf /'],
    ['imageRef', '--privileged'],
    ['sourceSha256', 'abc'],
  ])('refuses %s %j', (key, value) => {
    expect(jobPayloadSchema.safeParse({ ...payload, [key]: value }).success).toBe(false);
  });
});

describe('the record schema: a record that does not fit is refused whole', () => {
  it('accepts what a worker returns', () => {
    expect(kernelRecordSchema.parse(record)).toEqual(record);
  });

  it.each([
    ['kernel', '../../../x'],
    ['arch', 'x86 64'],
    ['image', 'a/b'],
    ['packageName', '../../../x'],
    ['packageName', ''],
    ['packageVersion', '1.0/../x'],
    ['packageVersion', '1:1.0'], // an epoch: kbuild cannot build in an M= path holding ':'
    ['packageVersion', '1.0\u001b[2J'],
    ['reason', 'make-failed\u001b[31m'],
    ['finishedAt', 'x'.repeat(1000)],
  ])('refuses %s %j', (key, value) => {
    expect(kernelRecordSchema.safeParse({ ...record, [key]: value }).success).toBe(false);
  });

  it.each([
    ['builtName', '../evil'],
    ['destName', '../../../../tmp/evil'],
    ['destName', 'a/b'],
    ['destName', 'x\u0000'],
    ['destLocation', '/kernel/../../../etc'],
    ['installLocation', '../..'],
  ])('refuses a module whose %s is %j', (key, value) => {
    const modules = [{ ...record.modules[0], [key]: value }];
    expect(kernelRecordSchema.safeParse({ ...record, modules }).success).toBe(false);
  });

  it('refuses an artifact whose sha256 is not 64 hex digits (it names a blob key)', () => {
    expect(kernelRecordSchema.safeParse({ ...record, log: { sha256: '../x', size: 1 } }).success).toBe(false);
    expect(kernelRecordSchema.safeParse({ ...record, log: { sha256: SHA.toUpperCase(), size: 1 } }).success).toBe(false);
  });

  it('cleans and caps message, firstError, warnings and worker instead of refusing them', () => {
    const parsed = kernelRecordSchema.parse({
      ...record,
      verdict: 'failed',
      message: `\u001b]0;owned\u0007bad ${'x'.repeat(5000)}`,
      firstError: 'hello.c:1: \u001b[31merror\u001b[0m: boom\r\nnext',
      warnings: ['w\u0007one'],
      worker: 'host\u001b[2J',
    });
    expect(parsed.message?.startsWith('bad xxx')).toBe(true);
    expect(parsed.message).toHaveLength(2000);
    expect(parsed.firstError).toBe('hello.c:1: error: boom next');
    expect(parsed.warnings).toEqual(['wone']);
    expect(parsed.worker).toBe('host');
  });
});
