import os from 'node:os';
import path from 'node:path';

/**
 * Every environment variable kfarm reads, in one place (the README has the same table).
 *
 * | variable          | meaning                                                      | default                |
 * |-------------------|--------------------------------------------------------------|------------------------|
 * | REDIS_URL         | use this Redis and external `kfarm worker`s (distributed mode) | unset: private Redis |
 * | DOCKER_HOST       | Docker engine to talk to (dockerode honours it)              | /var/run/docker.sock   |
 * | KFARM_STATE_DIR   | private Redis socket, its data, scratch files                | ~/.kfarm               |
 * | KFARM_QUEUE       | BullMQ queue name (lets several farms share one Redis)        | kfarm-builds           |
 * | KFARM_LOG_LEVEL   | pino level for the structured log on stderr                  | warn                   |
 * | KFARM_HOSTNAME    | name a worker reports in job results                        | os.hostname()          |
 * | KFARM_FARM_KEY_FILE | the farm key (HMAC of payloads and results); same file on every host | private Redis: $KFARM_STATE_DIR/farm.key, made on first use; REDIS_URL: required |
 * | REDIS_PASSWORD_FILE (or KFARM_REDIS_PASSWORD_FILE) | Redis password, when REDIS_URL holds none | none |
 * | KFARM_REDIS_CA_FILE | PEM CA(s) to trust for a rediss:// URL                       | the system's CAs       |
 * | KFARM_REDIS_CERT_FILE, KFARM_REDIS_KEY_FILE | client certificate and key for rediss:// (PEM) | none          |
 * | KFARM_KERNELS     | the selector `kfarm build` uses without --kernels            | all                    |
 * | KFARM_CACHE_SIZE  | bound of the result store under the state dir (4G, 500M)     | 4G                     |
 * | KFARM_ARCHIVE_KEYRING | keyring gpgv checks the archive's InRelease files against | /usr/share/keyrings/debian-archive-keyring.gpg |
 */
export interface Env {
  redisUrl: string | undefined;
  stateDir: string;
  queueName: string;
  logLevel: string;
  hostname: string;
  farmKeyFile: string | undefined;
  redisPasswordFile: string | undefined;
  redisCaFile: string | undefined;
  redisCertFile: string | undefined;
  redisKeyFile: string | undefined;
  /** the selector `kfarm build` uses when --kernels is not given */
  defaultKernels: string | undefined;
  /** KFARM_CACHE_SIZE as given (parsed where it is used: a bad value is that command's error) */
  cacheSize: string | undefined;
  /** KFARM_ARCHIVE_KEYRING: the Debian archive keyring (an index kfarm cannot verify is refused) */
  archiveKeyring: string | undefined;
}

export function readEnv(source: NodeJS.ProcessEnv = process.env): Env {
  return {
    redisUrl: nonEmpty(source.REDIS_URL),
    stateDir: nonEmpty(source.KFARM_STATE_DIR) ?? path.join(os.homedir(), '.kfarm'),
    queueName: nonEmpty(source.KFARM_QUEUE) ?? 'kfarm-builds',
    logLevel: nonEmpty(source.KFARM_LOG_LEVEL) ?? 'warn',
    hostname: nonEmpty(source.KFARM_HOSTNAME) ?? os.hostname(),
    farmKeyFile: nonEmpty(source.KFARM_FARM_KEY_FILE),
    redisPasswordFile: nonEmpty(source.REDIS_PASSWORD_FILE) ?? nonEmpty(source.KFARM_REDIS_PASSWORD_FILE),
    redisCaFile: nonEmpty(source.KFARM_REDIS_CA_FILE),
    redisCertFile: nonEmpty(source.KFARM_REDIS_CERT_FILE),
    redisKeyFile: nonEmpty(source.KFARM_REDIS_KEY_FILE),
    defaultKernels: nonEmpty(source.KFARM_KERNELS),
    cacheSize: nonEmpty(source.KFARM_CACHE_SIZE),
    archiveKeyring: nonEmpty(source.KFARM_ARCHIVE_KEYRING),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

export const env: Env = readEnv();
