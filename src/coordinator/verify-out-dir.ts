import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Env } from '../config/env.js';
import { MODULE_NAME } from '../dkms/names.js';
import { KfarmError } from '../errors/kfarm-error.js';
import { readPackInputs } from '../packaging/pack-input.js';
import type { BuildReport, KernelReport } from '../report/report.js';
import type { LoadReport } from '../job/verify-job.js';
import { readReport } from '../report/read-report.js';
import { withOutDirStage, type OutDirStage } from '../report/out-dir.js';
import { cleanText, TEXT_LIMITS } from '../util/clean-text.js';
import { listWorkerAdverts } from '../queue/worker-registry.js';
import { CONSOLE_LIMIT_BYTES, kvmUsable } from '../verify/boot-kernel.js';
import { ensureVerifyImage } from '../verify/verify-image.js';
import { kvmKnownBroken } from '../verify/kvm-broken.js';
import { outDirMokCerts } from './out-dir-mok.js';
import { bootConcurrency, DEFAULT_BOOT_TIMEOUT_SEC, type VerifyOptions } from '../verify/verify-kernel.js';
import { loadFromResult, routeBoot, usableLanes, verifyPayloadSchema, type VerifyLane, type VerifyPayload } from '../job/verify-job.js';

/** Why a row that was not built has no load check. */
const notBuilt = (k: KernelReport): LoadReport => ({
  verdict: 'not-verified',
  reason: k.verdict === 'excluded' ? 'excluded' : 'not-built',
  firstError: `the module was not built for ${k.kernel} (${k.verdict})`,
});

/**
 * `kfarm verify <out-dir>` and `kfarm build --verify load`: boots each built kernel with its
 * modules (read back from the out dir, each checked against report.json's sha256), fills every
 * row's `load`, saves each console as logs/load/<module>/<kernel>.log and rewrites the reports,
 * all through the out dir's writer (report/out-dir.ts): given `stage` (`kfarm build --verify
 * load`, whose outputs are staged there, uncommitted) it reads the build's staged report and
 * tarballs and stages its own files there, for the caller's one commit; else (`kfarm verify`)
 * it opens a stage and commits it once, and a failure or Ctrl-C leaves the out dir as it was.
 */
export async function verifyOutDir(
  outDir: string,
  /** env: where boots run (REDIS_URL's farm, or a private redis-server with this process's worker) */
  options: VerifyOptions & { env: Env; stage?: OutDirStage },
): Promise<BuildReport> {
  const { stage } = options;
  if (!stage) {
    // one schema-checked reader (a report cut short or edited is exit 2, not a crash), before anything is staged
    await readReport(outDir);
    return withOutDirStage(outDir, (opened) => verifyOutDir(outDir, { ...options, stage: opened }));
  }
  const report = await stage.readReport();
  const inputs = await readPackInputs(stage, process.env, report);
  const wanted = (k: KernelReport) => !options.kernels || options.kernels.includes(k.kernel);
  const rows = report.kernels.filter(wanted);
  if (rows.length === 0) {
    throw new KfarmError('KERNEL_SELECTOR_EMPTY', `no kernel of ${outDir}/report.json matches ${options.kernels?.join(',') ?? ''}`, {
      hint: `Its kernels: ${[...new Set(report.kernels.map((k) => k.kernel))].join(', ')}.`,
    });
  }
  const { env } = options;
  const kvmLocal = await kvmUsable();
  if (options.accel === 'kvm' && !env.redisUrl && !kvmLocal) {
    throw new KfarmError('BAD_OPTION', '--accel kvm was asked for, but /dev/kvm is missing or not usable by this user', {
      hint: 'Add the user to the kvm group, pass /dev/kvm into this container, or use --accel tcg (software emulation, slower).',
    });
  }
  const limit = options.concurrency ?? bootConcurrency();
  // --secure-boot: the MOKs to enrol (--mok-cert, else the build's own signing-cert.der), said before any boot
  const mokCerts = options.secureBoot ? (options.mokCerts ?? (await outDirMokCerts(stage, options.say))) : undefined;
  // local mode: the image first, as before (its progress on stderr, a missing engine an error now)
  if (!env.redisUrl) await ensureVerifyImage(options.runtime, options.logger, options.say);
  // boots are queue jobs: a private redis-server and this process's worker, or REDIS_URL's workers
  const { openFarmSession } = await import('../coordinator/farm-session.js');
  const session = await openFarmSession({
    env,
    runtime: options.runtime,
    logger: options.logger,
    concurrency: 0,
    signal: options.signal ?? new AbortController().signal,
    verify: { concurrency: limit },
  });
  const signal = options.signal;
  try {
    const queue = session.verifyQueue;
    if (!queue) throw new Error('the farm session has no verify queue');
    // boots a run interrupted or killed left queued would run before this run's: gone first
    const swept = await queue.sweepAbandoned();
    if (swept > 0) options.say(`removed ${swept} boot job(s) left queued by runs that are gone`);
    // routing: lanes a live worker consumes; with REDIS_URL, that a live worker also advertises
    // (a worker whose KVM cannot boot a guest stops advertising it); here, KVM unless this host showed it cannot boot
    const localLanes = new Set<VerifyLane>(kvmLocal && !(await kvmKnownBroken(options.stateDir)) ? ['kvm', 'tcg'] : ['tcg']);
    const lanesNow = async () =>
      usableLanes(await queue.servedLanes(), env.redisUrl ? new Set((await listWorkerAdverts(session.queue.redis, env.queueName)).flatMap((a) => a.verify ?? [])) : localLanes);
    let lanes = await lanesNow();
    if (options.accel === 'tcg' ? !lanes.has('tcg') : options.accel === 'auto' && lanes.size === 0) {
      throw new KfarmError('NO_WORKERS', `no kfarm worker on ${session.where} takes boots: nothing would verify`, {
        hint: 'Start `kfarm worker --verify tcg` (or kvm,tcg on a host with a usable /dev/kvm) on that Redis, then run `kfarm verify <out-dir>`.',
      });
    }
    if (options.accel === 'kvm' && !lanes.has('kvm')) {
      throw new KfarmError('BAD_OPTION', '--accel kvm was asked for, but no worker on this farm takes KVM boots', {
        hint: 'Start `kfarm worker --verify kvm` on a host with a usable /dev/kvm, or use --accel tcg / auto.',
      });
    }
    const hostArch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
    const route = (arch: string) => routeBoot(options.accel, { kvmWorker: lanes.has('kvm'), tcgWorker: lanes.has('tcg'), arch, hostArch });
    /** Queues the boot on a lane a live worker takes; routes it again (auto) when that lane loses its last worker before the boot starts. */
    const boot = async (payload: VerifyPayload, arch: string) => {
      let lane = route(arch);
      for (let routed = 1; ; routed++) {
        const jobId = await queue.submit(payload, lane);
        const outcome = await queue.wait(jobId, lane, signal);
        if (!('unserved' in outcome)) return outcome;
        lanes = await lanesNow();
        const next = options.accel === 'auto' && lanes.size > 0 ? route(arch) : lanes.has(lane) ? lane : undefined;
        if (!next || routed >= 3) return { jobId, error: `no live worker takes ${lane} boots any more (it stopped or died before the boot started)` };
        options.logger.warn({ kernel: payload.kernel, from: lane, to: next }, 'no live worker takes this lane any more: routed the boot again');
        lane = next;
      }
    };
    const where = session.distributed ? `on the farm's workers (${session.where})` : 'at once';
    options.say(`verifying ${rows.filter((k) => k.verdict === 'built').length} built kernel(s), ${session.distributed ? where : `${limit} boot(s) ${where}`}`);
    await Promise.all(
      rows.map(async (row) => {
        if (row.verdict !== 'built') {
          row.load = notBuilt(row);
          return;
        }
        const moduleName = row.module ?? report.module;
        const version = row.version ?? report.version;
        const built = inputs.find((i) => i.name === moduleName && i.version === version)?.kernels.find((k) => k.kernel === row.kernel && k.arch === row.arch);
        if (!built || !MODULE_NAME.test(moduleName)) {
          row.load = { verdict: 'not-verified', reason: 'no-modules', firstError: `the out dir holds no modules of ${moduleName} for ${row.kernel}` };
          return;
        }
        if (signal?.aborted) return;
        const modules = await Promise.all(built.modules.map(async (m) => ({ ...(await session.blobs.put(m.data)), installLocation: m.installLocation, fileName: m.fileName })));
        const payload = verifyPayloadSchema.parse({
          schemaVersion: 1,
          kernel: row.kernel,
          arch: row.arch,
          release: row.release,
          debianArch: row.debianArch,
          modules,
          cmdline: options.cmdline,
          accel: options.accel,
          timeoutSec: options.timeoutSec ?? DEFAULT_BOOT_TIMEOUT_SEC,
          requestId: randomBytes(16).toString('hex'),
          run: queue.run,
          ...(mokCerts ? { secureBoot: true, mokCerts } : {}),
        });
        let outcome: Awaited<ReturnType<typeof boot>>;
        try {
          outcome = await boot(payload, row.arch);
        } finally {
          await session.blobs.release(modules).catch(() => undefined);
        }
        if ('interrupted' in outcome) return;
        if ('error' in outcome) {
          row.load = { verdict: 'not-verified', reason: 'worker-error', firstError: cleanText(outcome.error, TEXT_LIMITS.firstError) };
          options.say(`  ${row.kernel}: not-verified (worker-error): ${row.load.firstError ?? ''}`);
          return;
        }
        // the row stays the coordinator's own: only the checked load figures come from the answer
        const load = loadFromResult(outcome.result);
        const consoleRef = outcome.result.console;
        const console = consoleRef ? cleanText((await session.blobs.get(consoleRef.sha256)).toString('utf8'), CONSOLE_LIMIT_BYTES + 64, { newlines: true }) : '';
        if (consoleRef) await session.blobs.release([consoleRef]);
        const { wallMs } = outcome.result;
        if (console) {
          // names were checked by readPackInputs (module and kernel names by kfarm's rules): no path separators
          const rel = path.posix.join('logs', 'load', moduleName, `${row.kernel}.log`);
          await stage.stageFile(rel, Buffer.from(console));
          load.log = rel;
        }
        row.load = load;
        options.say(
          `  ${row.kernel}: ${load.verdict}${load.reason ? ` (${load.reason})` : ''} [${load.accel ?? '-'}]${load.secureBoot !== undefined ? ` SecureBoot ${load.secureBoot ? 'on' : 'off'}, lockdown ${load.lockdown ?? 'none'}` : ''}${load.bootMs !== undefined ? ` boot ${load.bootMs} ms` : ''}${load.loadMs !== undefined ? `, load ${load.loadMs} ms` : ''}${wallMs !== undefined ? ` (${Math.round(wallMs / 100) / 10} s in its container)` : ''}`,
        );
      }),
    );
    if (signal?.aborted) throw new KfarmError('INTERRUPTED', 'load verification interrupted: its boots were stopped and taken off the queue');
  } finally {
    // ends this run's boots: the in-process worker's are killed, the unstarted ones leave the queues, the lease goes
    await session.close();
  }
  // SHA256SUMS follows at the commit, once, for the final report
  await stage.stageReports(report, options.junit ? { junit: options.junit } : {});
  return report;
}
