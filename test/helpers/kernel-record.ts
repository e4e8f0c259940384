import type { Artifact, JobPayload, KernelRecord } from '../../src/job/job-payload.js';

/**
 * A complete KernelRecord for tests and benches, as a worker returns it for a built module:
 * defaults for every field a case does not care about, the case's own fields on top.
 */
export function kernelRecord(fields: Partial<KernelRecord> & Pick<KernelRecord, 'log'>): KernelRecord {
  return {
    schemaVersion: 1,
    kernel: '6.1.0-56-amd64',
    arch: 'amd64',
    image: 'debian-12',
    verdict: 'built',
    modules: [],
    logTruncated: false,
    durationMs: 0,
    worker: 'test',
    finishedAt: '2026-01-01T00:00:00.000Z',
    cacheable: true,
    ...fields,
  };
}

/** The record a worker returns for this job: its kernel, arch and image. */
export function recordForPayload(payload: JobPayload, fields: Partial<KernelRecord> & Pick<KernelRecord, 'log'>): KernelRecord {
  return kernelRecord({ kernel: payload.kernel, arch: payload.arch, image: payload.image, ...fields });
}

/** One built module as the driver reports it, installed where dkms puts it. */
export function builtModule(name: string, file: Artifact): KernelRecord['modules'][number] {
  return { builtName: name, destName: name, destLocation: '/updates/dkms', installLocation: '/updates/dkms', file };
}
