import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KfarmError } from '../../src/errors/kfarm-error.js';
import { isInsidePath, parseReport } from '../../src/report/read-report.js';
import { buildOptions } from '../../src/config/build-options.js';
import { jobPayloadSchema, kernelRecordSchema, type JobPayload, type KernelRecord } from '../../src/job/job-payload.js';
import { acceptRecord } from '../../src/job/record-check.js';
import { isValidLocation, isValidName } from '../../src/dkms/names.js';
import { sampleReport } from '../fixtures/junit/sample-report.js';
import { mutated } from './mutate.js';
import { RUNS } from './runs.js';

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
  dependsOn: [{ name: 'dep', version: '1', symvers: { sha256: SHA, size: 3 } }],
};
const record: KernelRecord = {
  schemaVersion: 1,
  kernel: '6.12.117+deb12-amd64',
  arch: 'x86_64',
  image: 'debian-12',
  verdict: 'failed',
  reason: 'make-failed',
  message: 'it failed',
  firstError: 'x.c:1: error: no',
  packageName: 'hello',
  packageVersion: '1.0.0~rc1+dfsg',
  modules: [{ builtName: 'hello', destName: 'hello', destLocation: '/extra', installLocation: '/updates/dkms', suffix: '.ko.xz', file: { sha256: SHA, size: 10 } }],
  warnings: ['w'],
  log: { sha256: SHA, size: 1 },
  logTruncated: false,
  durationMs: 1200,
  worker: 'host-1',
  attempt: 1,
  finishedAt: '2026-11-26T00:00:00.000Z',
  cacheable: true,
};
const locationOk = (v: string) =>
  isValidLocation(
    v
      .split('/')
      .filter((p) => p !== '' && p !== '.')
      .join('/'),
  );

describe('fuzz: report.json, job payloads and records', () => {
  it('parseReport: any text is refused with BAD_OPTION or accepted; accepted ones hold only usable names and paths inside the out dir', () => {
    const texts = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      mutated(sampleReport()).map((v) => JSON.stringify(v) ?? ''),
      fc.nat().map((n) => {
        const t = JSON.stringify(sampleReport());
        return t.slice(0, n % t.length);
      }),
    );
    fc.assert(
      fc.property(texts, (text) => {
        let r;
        try {
          r = parseReport(text, 'report.json');
        } catch (err) {
          expect(err).toBeInstanceOf(KfarmError);
          expect((err as KfarmError).code).toBe('BAD_OPTION');
          return;
        }
        expect(isValidName('module name', r.module)).toBe(true);
        expect(isValidName('module version', r.version)).toBe(true);
        for (const a of [r.fullTarball, ...(r.packages ?? []), ...r.kernels.map((k) => k.tarball)]) if (a) expect(isInsidePath(a.path)).toBe(true);
        for (const k of r.kernels) {
          expect(isValidName('kernel release', k.kernel)).toBe(true);
          for (const m of k.modules) expect(locationOk(m.destModuleLocation)).toBe(true);
          if (k.load?.log !== undefined) expect(isInsidePath(k.load.log)).toBe(true);
        }
        // accepted: it round-trips
        expect(parseReport(JSON.stringify(r), 'report.json')).toEqual(r);
      }),
      { numRuns: RUNS },
    );
  });

  it('isInsidePath: what it accepts never leaves the directory it is joined to', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.array(fc.constantFrom('a', '.', '..', '', 'b.c', '\\', '\0'), { maxLength: 6 }).map((p) => p.join('/')),
          fc.string(),
        ),
        (p) => {
          if (!isInsidePath(p)) return;
          expect(p.startsWith('/')).toBe(false);
          const joined = `/out/${p}`;
          expect(new URL(`file://${joined}`).pathname.startsWith('/out/')).toBe(true);
          expect(p.split('/')).not.toContain('..');
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('kernelRecordSchema.safeParse never throws; an accepted record holds usable names and parses again to itself', () => {
    fc.assert(
      fc.property(fc.oneof(mutated(record), fc.anything()), (input) => {
        const r = kernelRecordSchema.safeParse(input);
        if (!r.success) return;
        const v = r.data;
        for (const n of [v.packageName, v.packageVersion].filter((x) => x !== undefined)) expect(n).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_.+~-]*$/);
        for (const m of v.modules) {
          expect(isValidName('module name', m.builtName) && isValidName('module name', m.destName)).toBe(true);
          expect(locationOk(m.destLocation) && locationOk(m.installLocation)).toBe(true);
        }
        // cleaning is idempotent: a record stored and read back is the same record
        expect(kernelRecordSchema.parse(JSON.parse(JSON.stringify(v)))).toEqual(v);
      }),
      { numRuns: RUNS },
    );
  });

  it('jobPayloadSchema.safeParse never throws; an accepted payload round-trips through JSON', () => {
    fc.assert(
      fc.property(fc.oneof(mutated(payload), fc.anything()), (input) => {
        const r = jobPayloadSchema.safeParse(input);
        if (!r.success) return;
        expect(isValidName('kernel release', r.data.kernel)).toBe(true);
        expect(jobPayloadSchema.parse(JSON.parse(JSON.stringify(r.data)))).toEqual(r.data);
      }),
      { numRuns: RUNS },
    );
  });

  it('acceptRecord: accepted exactly when the record names the job kernel, arch and image; refused with RECORD_REJECTED otherwise', () => {
    const name = fc.constantFrom('6.12.117+deb12-amd64', '6.1.0-9-amd64', 'x86_64', 'aarch64', 'debian-12', 'debian-13');
    fc.assert(
      fc.property(name, name, name, (kernel, arch, image) => {
        const r = { ...record, kernel, arch, image };
        const same = kernel === payload.kernel && arch === payload.arch && image === payload.image;
        try {
          const got = acceptRecord(payload, r);
          expect(same).toBe(true);
          expect([got.kernel, got.arch, got.image]).toEqual([payload.kernel, payload.arch, payload.image]);
        } catch (err) {
          expect(same).toBe(false);
          expect((err as KfarmError).code).toBe('RECORD_REJECTED');
        }
      }),
      { numRuns: RUNS },
    );
  });
});
