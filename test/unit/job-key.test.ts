import { describe, expect, it } from 'vitest';
import { jobKey } from '../../src/job/job-key.js';
import { jobPayloadSchema, type JobPayload } from '../../src/job/job-payload.js';
import { buildOptions } from '../../src/config/build-options.js';

const base: JobPayload = {
  schemaVersion: 1,
  sourceSha256: 'a'.repeat(64),
  kernel: '6.1.0-57-amd64',
  arch: 'x86_64',
  image: 'debian-12',
  imageRef: 'kfarm/debian-12:6.1.0-57-amd64',
  imageId: 'sha256:' + 'b'.repeat(64),
  driverSha256: 'c'.repeat(64),
  options: buildOptions({}),
  buildId: 'one',
};
const withDep = (sha256: string): JobPayload => ({ ...base, dependsOn: [{ name: 'depends-exporter', version: '1.0', symvers: { sha256, size: 10 } }] });

describe('jobKey and BUILD_DEPENDS', () => {
  it("changes with the dependency's Module.symvers, not with the run", () => {
    expect(jobKey(withDep('d'.repeat(64)))).toBe(jobKey({ ...withDep('d'.repeat(64)), buildId: 'two' }));
    expect(jobKey(withDep('d'.repeat(64)))).not.toBe(jobKey(withDep('e'.repeat(64))));
    expect(jobKey(withDep('d'.repeat(64)))).not.toBe(jobKey(base));
  });
  it('keeps the key of a job without BUILD_DEPENDS as it was', () => {
    expect(jobKey(base)).toBe(jobKey({ ...base, dependsOn: undefined }));
  });
  it('accepts dependsOn at the queue border only with plain names and sha256s', () => {
    expect(jobPayloadSchema.safeParse(withDep('d'.repeat(64))).success).toBe(true);
    expect(jobPayloadSchema.safeParse({ ...base, dependsOn: [{ name: '../x', version: '1' }] }).success).toBe(false);
    expect(jobPayloadSchema.safeParse(withDep('not-a-sha')).success).toBe(false);
  });
});
