import { describe, expect, it } from 'vitest';
import { refuseSameModule, settleModule } from '../../src/coordinator/settle-module.js';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import type { KernelRecord } from '../../src/job/job-payload.js';

const ran = (kernel: string, over: Partial<KernelRecord>, log = ''): { record: KernelRecord; files: Map<string, Buffer> } => ({
  record: {
    schemaVersion: 1,
    kernel,
    arch: 'x86_64',
    image: 'debian-12',
    verdict: 'built',
    modules: [],
    log: { sha256: `log-${kernel}`, size: log.length },
    logTruncated: false,
    durationMs: 1,
    worker: 'w',
    finishedAt: '2026-11-26T00:00:00Z',
    cacheable: true,
    ...over,
  },
  files: new Map([[`log-${kernel}`, Buffer.from(log)]]),
});
const thrown = (f: () => unknown): Error => {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('did not throw');
};

describe('settleModule: who the module is once its jobs ran', () => {
  it('a dkms.conf that no kernel could use stops the run (exit 2), with the end of what evaluating it printed', () => {
    const bad = { verdict: 'failed', reason: 'bad-conf', message: 'PACKAGE_NAME is not set' } as const;
    const err = thrown(() => settleModule([ran('6.1', bad, 'line 1\nsyntax error'), ran('6.12', bad)], 'hello', { dir: '/src/hello' }));
    expect(isKfarmError(err, 'DKMS_CONF_INVALID')).toBe(true);
    expect(err.message).toBe('dkms.conf in hello is not usable: PACKAGE_NAME is not set');
    expect((err as { hint?: string }).hint).toContain('What evaluating it printed:\nline 1\nsyntax error');
  });
  it("a dkms.conf that fails on some kernels only is their verdict, not the run's", () => {
    const s = settleModule([ran('6.1', { verdict: 'failed', reason: 'bad-conf' }), ran('6.12', { packageName: 'hello', packageVersion: '1.0' })], 'hello', { dir: '/src/hello' });
    expect(s.identity).toEqual({ name: 'hello', version: '1.0' });
  });
  it('names the module after its directory when no kernel said, and says so; warnings once each', () => {
    const s = settleModule(
      [ran('6.1', { verdict: 'failed', reason: 'worker-error', warnings: ['w1'] }), ran('6.12', { verdict: 'failed', reason: 'worker-error', warnings: ['w1'] })],
      'x',
      { dir: '/src/hello' },
    );
    expect(s.identity).toEqual({ name: 'hello', version: 'unknown' });
    expect(s.warnings).toEqual(['w1', "no kernel's result or log says the module's name and version: the report is named after the source directory"]);
  });
});

describe('refuseSameModule', () => {
  it('refuses two sources that are the same name/version; other versions are fine', () => {
    expect(() =>
      refuseSameModule([
        { dir: 'a', identity: { name: 'm', version: '1' } },
        { dir: 'b', identity: { name: 'm', version: '2' } },
      ]),
    ).not.toThrow();
    const err = thrown(() =>
      refuseSameModule([
        { dir: 'a', identity: { name: 'm', version: '1' } },
        { dir: 'b', identity: { name: 'm', version: '1' } },
      ]),
    );
    expect(isKfarmError(err, 'BAD_OPTION')).toBe(true);
    expect(err.message).toBe('b and a are both m/1: DKMS holds one module per name and version');
  });
});
