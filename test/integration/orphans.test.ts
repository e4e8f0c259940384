import { randomUUID } from 'node:crypto';
import { execa } from 'execa';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { imageRef } from '../../src/images/catalog.js';
import { currentInstance, processStartTime } from '../../src/process/instance.js';
import { LABEL_HOST, LABEL_INSTANCE, LABEL_PID, reapOrphans } from '../../src/worker/build-worker.js';

/**
 * The orphan reaper tells runs of a process apart, not just pids: a compose worker is PID 1
 * again after a restart under the same hostname, and must remove what its predecessor left.
 */
const runtime = new DockerRuntime();
const host = `orphan-test-${randomUUID().slice(0, 8)}`;
const logger = pino({ level: 'silent' });

/** A stopped build container as a kfarm process would have left it (never started). */
async function leftContainer(name: string, labels: Record<string, string>): Promise<string> {
  const args = ['create', '--label', `${LABEL_HOST}=${host}`, '--label', `kfarm.test=${name}`];
  for (const [k, v] of Object.entries(labels)) args.push('--label', `${k}=${v}`);
  const { stdout } = await execa('docker', [...args, imageRef('debian-12'), 'true']);
  return stdout.trim();
}

const remaining = async () => (await runtime.listContainers({ [LABEL_HOST]: host })).map((c) => c.labels['kfarm.test']).sort();

afterAll(async () => {
  await runtime.removeContainers({ [LABEL_HOST]: host });
});

describe('reapOrphans', () => {
  it('removes an earlier run under this very pid and a recycled pid, keeps this run and live owners', async () => {
    const self = currentInstance();
    const selfStart = Number(self.split(':')[1]);
    // another live process: its own run is kept, a container naming its pid with another start is a recycled pid's
    const other = execa('sleep', ['60'], { reject: false });
    const otherPid = other.pid ?? 0;
    const otherStart = processStartTime(otherPid);
    expect(otherStart).toBeDefined();
    try {
      await leftContainer('predecessor', { [LABEL_PID]: String(process.pid), [LABEL_INSTANCE]: `${process.pid}:${selfStart - 1}` });
      await leftContainer('older-kfarm-same-pid', { [LABEL_PID]: String(process.pid) });
      await leftContainer('current', { [LABEL_PID]: String(process.pid), [LABEL_INSTANCE]: self });
      await leftContainer('live-other', { [LABEL_PID]: String(otherPid), [LABEL_INSTANCE]: `${otherPid}:${otherStart}` });
      await leftContainer('recycled-pid', { [LABEL_PID]: String(otherPid), [LABEL_INSTANCE]: `${otherPid}:${Number(otherStart) - 1}` });

      expect(await reapOrphans(runtime, host, logger)).toBe(3);
      expect(await remaining()).toEqual(['current', 'live-other']);

      other.kill('SIGKILL');
      await other;
      expect(await reapOrphans(runtime, host, logger), 'a dead owner leaves orphans').toBe(1);
      expect(await remaining()).toEqual(['current']);
    } finally {
      other.kill('SIGKILL');
    }
  }, 60_000);
});
