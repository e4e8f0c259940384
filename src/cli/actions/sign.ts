import { env } from '../../config/env.js';
import { signOutDir } from '../../coordinator/sign-out-dir.js';
import { DockerRuntime } from '../../executor/docker-runtime.js';
import { rootLogger } from '../../logging/logger.js';
import { currentInstance } from '../../process/instance.js';
import { LABEL_HOST, LABEL_INSTANCE, LABEL_PID } from '../../worker/build-worker.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../exit-codes.js';

/** `kfarm sign <out-dir>` (options: commands/sign.ts) */
export async function signAction(ctx: CliContext, outDir: string, opts: { signKey: string; signCert: string }): Promise<void> {
  // the signer containers carry a build's labels: an interrupted run's are reaped the same way
  const labels = { [LABEL_HOST]: env.hostname, [LABEL_PID]: String(process.pid), [LABEL_INSTANCE]: currentInstance() };
  const pin = process.env.KBUILD_SIGN_PIN;
  const outcome = await signOutDir(
    { outDir, keyPath: opts.signKey, certPath: opts.signCert, ...(pin ? { pin } : {}) },
    { runtime: new DockerRuntime(), logger: rootLogger, signal: ctx.signal, labels, say: ctx.progress },
  );
  if (outcome.resigned > 0) ctx.out(`${outcome.resigned} module(s) were signed already: that signature was replaced`);
  if (outcome.formats.length > 0) ctx.out(`packed again: ${outcome.formats.join(', ')}`);
  ctx.out(
    `${outcome.modules} module(s) for ${outcome.kernels} kernel(s) in ${outDir} signed by ${outcome.subject}; enrol ${outDir}/signing-cert.der (${outDir}/ENROLL.md); checksums in ${outDir}/SHA256SUMS`,
  );
  ctx.setExitCode(EXIT.ok);
}
