import { randomBytes } from 'node:crypto';
import { link, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { KfarmError } from '../errors/kfarm-error.js';
import { makeDirs } from '../util/make-dir.js';

/** Fewer bytes than this is no key: a typo, an empty file. */
const MIN_KEY_BYTES = 16;

const MAKE_ONE =
  'Make one: `head -c 32 /dev/urandom | base64 > farm.key && chmod 600 farm.key`, give the same file to every worker and coordinator ' +
  '(never to Redis), and point KFARM_FARM_KEY_FILE at it. compose.yaml makes one in .kfarm-farm/farm.key.';

/**
 * The farm key that seals payloads and results (queue/record-seal.ts). With REDIS_URL the farm
 * spans hosts, so the key is a file the user gives every host (KFARM_FARM_KEY_FILE); without
 * it (the private Redis) only this host takes part and the key is made on first use in the
 * state dir. KFARM_FARM_KEY_FILE wins in both modes.
 */
export async function loadFarmKey(opts: { keyFile: string | undefined; distributed: boolean; stateDir: string; logger: Logger }): Promise<Buffer> {
  if (opts.keyFile) return readKeyFile(opts.keyFile, opts.logger);
  if (opts.distributed) {
    throw new KfarmError('FARM_KEY_MISSING', 'REDIS_URL is set but KFARM_FARM_KEY_FILE is not: a farm on a shared Redis needs a farm key to seal its jobs and results', {
      hint: MAKE_ONE,
    });
  }
  return privateKey(opts.stateDir, opts.logger);
}

async function readKeyFile(file: string, logger: Logger): Promise<Buffer> {
  let key: Buffer;
  try {
    key = Buffer.from((await readFile(file, 'utf8')).trim(), 'utf8');
    const mode = (await stat(file)).mode & 0o777;
    if (mode & 0o077) logger.warn({ file, mode: mode.toString(8) }, 'the farm key file is readable by others: chmod 600 it');
  } catch (err) {
    throw new KfarmError('FARM_KEY_MISSING', `cannot read the farm key KFARM_FARM_KEY_FILE=${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
      cause: err,
      hint: MAKE_ONE,
    });
  }
  if (key.length < MIN_KEY_BYTES) {
    throw new KfarmError('FARM_KEY_MISSING', `the farm key in ${file} is too short (${key.length} bytes, at least ${MIN_KEY_BYTES})`, { hint: MAKE_ONE });
  }
  return key;
}

/**
 * $KFARM_STATE_DIR/farm.key, made once: written whole under a temporary name (0600), then
 * linked into place, which fails if another process got there first (then its key is used).
 */
async function privateKey(stateDir: string, logger: Logger): Promise<Buffer> {
  const file = path.join(stateDir, 'farm.key');
  const exists = await stat(file).then(
    () => true,
    (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? false : Promise.reject(err)),
  );
  if (exists) return readKeyFile(file, logger);
  await makeDirs(stateDir, { mode: 0o700 });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(temp, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(temp, file);
    logger.info({ file }, 'made a farm key for the private Redis');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  return readKeyFile(file, logger);
}
