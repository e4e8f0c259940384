import path from 'node:path';
import { KfarmError } from '../errors/kfarm-error.js';
import type { KernelRecord } from '../job/job-payload.js';
import { settleIdentity, type ModuleIdentity } from './module-identity.js';

// After a source's jobs ran: who the module is, or why the run stops (a dkms.conf no kernel
// could use, two sources that are the same module). Pure: build.ts hands in the results.

/** A kernel's result as runJobs returns it (run-jobs.ts JobResult): its record and the blobs it names. */
export interface RanJob {
  record: KernelRecord;
  files: ReadonlyMap<string, Buffer>;
}

export interface Settled<R extends RanJob> {
  identity: ModuleIdentity;
  results: R[];
  warnings: string[];
}

/**
 * Who the module is, from what dkms.conf said on each kernel. A dkms.conf that no kernel
 * could use is bad input (exit 2, nothing built); one that fails on some kernels only is
 * those kernels' verdict.
 */
export function settleModule<R extends RanJob>(ran: R[], sourceDir: string, source: { dir: string }): Settled<R> {
  const first = ran[0];
  if (first && ran.every((r) => r.record.verdict === 'failed' && r.record.reason === 'bad-conf')) throw unusableConf(first, sourceDir, source);
  const settled = settleIdentity(ran);
  const warnings = [...new Set(ran.flatMap((r) => r.record.warnings ?? []))];
  if (settled.identity) return { identity: settled.identity, results: settled.results, warnings };
  // No result or log says the name (the farm could not run the jobs, or a build cut short used a MAKE and CLEAN without its build dir).
  warnings.push("no kernel's result or log says the module's name and version: the report is named after the source directory");
  return { identity: { name: path.basename(source.dir), version: 'unknown' }, results: settled.results, warnings };
}

/** The error that ends the run when dkms.conf could not be evaluated: its message and the end of the log. */
export function unusableConf(result: RanJob, sourceDir: string, source: { dir: string }): KfarmError {
  const { record } = result;
  const log = result.files.get(record.log.sha256)?.toString('utf8').trim().split('\n').slice(-8).join('\n') ?? '';
  return new KfarmError('DKMS_CONF_INVALID', `dkms.conf in ${sourceDir} is not usable: ${record.message ?? 'it could not be evaluated'}`, {
    context: { source: source.dir, kernel: record.kernel },
    hint: `Fix dkms.conf; DKMS needs PACKAGE_NAME, PACKAGE_VERSION and DEST_MODULE_LOCATION[i] for every module.${log ? `\nWhat evaluating it printed:\n${log}` : ''}`,
  });
}

/** DKMS holds one module per name and version: two sources that are both name/version would overwrite each other's outputs. */
export function refuseSameModule(modules: ReadonlyArray<{ dir: string; identity: ModuleIdentity }>): void {
  const seen = new Map<string, string>();
  for (const { dir, identity } of modules) {
    const key = `${identity.name}/${identity.version}`;
    const other = seen.get(key);
    if (other !== undefined) {
      throw new KfarmError('BAD_OPTION', `${dir} and ${other} are both ${key}: DKMS holds one module per name and version`, {
        context: { module: identity.name, version: identity.version },
        hint: 'Build them in separate runs (with separate --out), or give one of them another PACKAGE_VERSION.',
      });
    }
    seen.set(key, dir);
  }
}
