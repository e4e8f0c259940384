import { readFile } from 'node:fs/promises';
import { env } from '../../config/env.js';
import { KfarmError } from '../../errors/kfarm-error.js';
import { DockerRuntime } from '../../executor/docker-runtime.js';
import { rootLogger } from '../../logging/logger.js';
import { startService } from '../../service/serve.js';
import type { CliContext } from '../context.js';
import { EXIT, exitCodeFor } from '../exit-codes.js';
import type { ServeCliOptions } from '../commands/serve.js';

/** `kfarm serve` (options: commands/serve.ts): runs until SIGINT/SIGTERM; a running build is resumed at the next start. */
export async function serveAction(ctx: CliContext, opts: ServeCliOptions): Promise<void> {
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) {
    throw new KfarmError('BAD_OPTION', `${opts.tlsCert ? '--tls-cert' : '--tls-key'} given without ${opts.tlsCert ? '--tls-key' : '--tls-cert'}`, {
      hint: 'HTTPS needs both: --tls-cert chain.pem --tls-key key.pem.',
    });
  }
  const tls = opts.tlsCert && opts.tlsKey ? { cert: await readPem(opts.tlsCert), key: await readPem(opts.tlsKey) } : undefined;
  const service = await startService({
    env,
    runtime: new DockerRuntime(),
    logger: rootLogger,
    listen: { ...opts.listen, ...(tls ? { tls } : {}) },
    exitCodeFor,
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
  });
  ctx.progress(`kfarm serve: listening on ${service.url}${service.resumed ? ` (${service.resumed} unfinished build(s) resumed)` : ''}; API: ${service.url}/api/v1/openapi.json`);
  await new Promise<void>((resolve) => (ctx.signal.aborted ? resolve() : ctx.signal.addEventListener('abort', () => resolve(), { once: true })));
  await service.close();
  ctx.setExitCode(EXIT.ok);
}

async function readPem(file: string): Promise<Buffer> {
  return readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw new KfarmError('BAD_OPTION', `cannot read ${file} (${err.code ?? err.message})`, { context: { file }, hint: 'Give a readable PEM file.' });
  });
}
