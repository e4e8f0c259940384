import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { ContainerRuntime } from '../executor/runtime.js';
import { signModules, type SigningSetup } from '../signing/index.js';
import type { JobResult } from './run-jobs.js';

/**
 * `--sign-key/--sign-cert`: every built kernel's modules signed (src/signing/) between the
 * results and the packaging, on this host's engine, in the kernel's own image. The results in
 * the cache stay unsigned (a key is not part of a build): only what is written to --out is
 * signed, and report.json gives the signed files' sha256.
 */
export async function signResults(
  results: readonly JobResult[],
  signing: SigningSetup,
  deps: { runtime: ContainerRuntime; logger: Logger; labels: Record<string, string>; signal: AbortSignal },
): Promise<JobResult[]> {
  const signed: JobResult[] = [];
  for (const result of results) {
    const { record } = result;
    if (record.verdict !== 'built' || record.modules.length === 0) {
      signed.push(result);
      continue;
    }
    const signer = signing.kernels.find((k) => k.kernel === record.kernel);
    if (!signer) throw new Error(`no signer was set up for ${record.kernel}`); // checkSigningSetup covers every planned kernel: a bug
    const modules = record.modules.map((m) => {
      const data = m.file ? result.files.get(m.file.sha256) : undefined;
      if (!data) throw new Error(`${record.kernel}: ${m.destName} was not fetched`); // a bug, not bad input
      return { fileName: `${m.destName}${m.suffix ?? '.ko'}`, data };
    });
    const out = await signModules({
      runtime: deps.runtime,
      image: signer.image,
      kernel: record.kernel,
      modules,
      key: signing.key,
      hash: signer.hash,
      labels: deps.labels,
      logger: deps.logger,
      signal: deps.signal,
    });
    const files = new Map(result.files);
    const newModules = record.modules.map((m, i) => {
      const data = out[i]?.data as Buffer;
      const sha256 = createHash('sha256').update(data).digest('hex');
      files.set(sha256, data);
      return { ...m, file: { sha256, size: data.length } };
    });
    deps.logger.info({ kernel: record.kernel, modules: newModules.length }, 'modules signed');
    signed.push({ ...result, record: { ...record, modules: newModules }, files });
  }
  return signed;
}
