import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { loadFarmKey } from '../../src/queue/farm-key.js';
import { tempDir } from '../helpers/kfarm-cli.js';

const logger = pino({ level: 'silent' });

describe('the farm key', () => {
  it('the private Redis gets one made on first use: 0600, the same for every process that asks at once, and kept', async () => {
    const stateDir = path.join(await tempDir('farm-key'), 'state');
    const keys = await Promise.all(Array.from({ length: 6 }, () => loadFarmKey({ keyFile: undefined, distributed: false, stateDir, logger })));
    expect(new Set(keys.map((k) => k.toString('hex'))).size).toBe(1);
    expect(keys[0]?.length).toBeGreaterThanOrEqual(32);
    expect((await stat(path.join(stateDir, 'farm.key'))).mode & 0o777).toBe(0o600);
    const again = await loadFarmKey({ keyFile: undefined, distributed: false, stateDir, logger });
    expect(again.equals(keys[0] as Buffer)).toBe(true);
  });

  it('distributed mode without KFARM_FARM_KEY_FILE is FARM_KEY_MISSING, saying how to make one', async () => {
    const err = await loadFarmKey({ keyFile: undefined, distributed: true, stateDir: await tempDir('farm-key-d'), logger }).catch((e: unknown) => e);
    expect(isKfarmError(err, 'FARM_KEY_MISSING')).toBe(true);
    expect((err as { hint: string }).hint).toContain('head -c 32 /dev/urandom | base64 > farm.key');
  });

  it('a key file that is missing or too short is FARM_KEY_MISSING; a good one is used as it is', async () => {
    const dir = await tempDir('farm-key-f');
    const missing = await loadFarmKey({ keyFile: path.join(dir, 'nope'), distributed: true, stateDir: dir, logger }).catch((e: unknown) => e);
    expect(isKfarmError(missing, 'FARM_KEY_MISSING')).toBe(true);
    await writeFile(path.join(dir, 'short'), 'abc\n', { mode: 0o600 });
    const short = await loadFarmKey({ keyFile: path.join(dir, 'short'), distributed: true, stateDir: dir, logger }).catch((e: unknown) => e);
    expect(isKfarmError(short, 'FARM_KEY_MISSING')).toBe(true);
    await writeFile(path.join(dir, 'good'), 'c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0Cg==\n', { mode: 0o600 });
    const good = await loadFarmKey({ keyFile: path.join(dir, 'good'), distributed: true, stateDir: dir, logger });
    expect(good.toString()).toBe('c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0Cg==');
  });
});
