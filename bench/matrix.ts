/**
 * Benchmark: the public DKMS corpus x the default debian-12 kernels, kfarm against real
 * `dkms build` (baseline A) and against the physical limit (baseline B), all in one run.
 *
 *   npm run build && npm run bench:matrix -- [--modules acpi-call-dkms,vpoll-dkms] [--kernels k1,k2]
 *       [--skip-dkms] [--skip-split] [--skip-all] [--skip-warm] [--cores N] [--concurrency N]
 *
 * A: `dkms build` of each (module, kernel), one after the other, in ONE container of the
 *    release's oracle image (bench/conformance/oracle-image.ts: the same headers), builds timed.
 * B: the CPU seconds (user + sys of the children, bash `times`) of the bare kbuild
 *    `make -C /lib/modules/<k>/build M=<copy of the source>` of each cell, summed, / cores. A
 *    cell whose bare make builds no .ko (a package whose Kbuild is in a subdirectory) counts its
 *    `dkms build`'s CPU instead, and the bench says how many did.
 * kfarm cold: fresh state dir, --no-cache: (i) one `kfarm build` per module, (ii) one call with all.
 * kfarm warm: (i) again on its state dir, nothing changed: each module's whole process wall time.
 * For each cold run, where the CPU went (host /proc/stat, the kfarm process's rusage through
 * /usr/bin/time, dockerd's and containerd's /proc/<pid>/stat; the rest is the build containers),
 * and the best possible schedule: per call max(its cells' CPU / cores, its longest cell's wall),
 * from the same per-cell figures as B (the bare make's, or dkms's where bare make built no .ko).
 * Not a test: it prints figures and ratios, never fails on them.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { packTar, type TarEntry } from '../src/executor/archive.js';
import { DockerRuntime } from '../src/executor/docker-runtime.js';
import { listKfarmImages } from '../src/images/catalog.js';
import { defaultDebian12Kernels } from '../src/matrix/debian-kernels.js';
import { packageRoot } from '../src/paths.js';
import { tempDir } from '../test/helpers/kfarm-cli.js';
import { fetchReleaseCorpus } from './conformance/corpus-fetch.js';
import { ARCHIVE_PACKAGES, type CorpusSource } from './conformance/corpus.js';
import { oracleImage } from './conformance/oracle-image.js';
import { treeEntries } from './conformance/source-tree.js';
import { cpuLine, sumAccounts, type CpuAccount } from './lib/cpu-account.js';
import { runAccounted } from './lib/cpu-probe.js';
import { scheduleBound, type CellCost } from './lib/schedule-bound.js';
import { flag, has, median, parseTimesLine, targetLine } from './lib/stats.js';
import { timelineLine, timelineOf, type Timeline } from './lib/timeline.js';

const args = process.argv.slice(2);
const say = (line: string) => process.stderr.write(`[matrix] ${line}\n`);
const runtime = new DockerRuntime();
const cores = Number(flag(args, '--cores', String(os.cpus().length)));
// kfarm's own default (the cores + 1, as memory allows) unless --concurrency N compares another
const concurrencyArgs = has(args, '--concurrency') ? ['--concurrency', flag(args, '--concurrency', '')] : [];

/** one (module, kernel) cell as the baseline container measured it */
interface Cell {
  label: string;
  kernel: string;
  dkmsExit: number;
  dkmsWall: number;
  dkmsCpu: number;
  bareExit: number;
  bareWall: number;
  bareCpu: number;
  bareKos: number;
}

/** the cell's share of the limit: its bare make, or its dkms build where bare make built no .ko */
const bareCounts = (c: Cell) => c.bareExit === 0 && c.bareKos > 0;
const limitCost = (c: Cell, call: string): CellCost => (bareCounts(c) ? { call, cpuS: c.bareCpu, wallS: c.bareWall } : { call, cpuS: c.dkmsCpu, wallS: c.dkmsWall });

// Lines: @@dkms <label> <kernel> <rc> <wall s> <children's `times`>, @@bare <label> <kernel> <rc> <.ko count> <wall s> <times>
const baselineScript = () => readFile(path.join(packageRoot, 'bench', 'matrix-baseline.sh'), 'utf8');

async function baselines(image: string, sources: readonly CorpusSource[], kernels: readonly string[]): Promise<Cell[]> {
  const entries: TarEntry[] = [
    { path: 'in', type: 'directory', mode: 0o755 },
    { path: 'in/src', type: 'directory', mode: 0o755 },
  ];
  for (const s of sources) entries.push(...(await treeEntries(s.dir, `in/src/${s.label}`)));
  const { output } = await runtime.runHelper(image, ['bash', '-c', await baselineScript(), 'baseline', ...kernels], await packTar(entries), 4 * 3600_000);
  if (!output.includes('@@end')) throw new Error(`the baseline container did not run to its end:\n${output.slice(-2000)}`);
  const cells = new Map<string, Cell>();
  for (const line of output.split('\n')) {
    const d = /^@@dkms (\S+) (\S+) (\d+) ([\d.]+) (.*)$/.exec(line);
    if (d)
      cells.set(`${d[1]} ${d[2]}`, {
        label: d[1] as string,
        kernel: d[2] as string,
        dkmsExit: Number(d[3]),
        dkmsWall: Number(d[4]),
        dkmsCpu: parseTimesLine(d[5] as string) ?? Number.NaN,
        bareExit: -1,
        bareWall: Number.NaN,
        bareCpu: Number.NaN,
        bareKos: 0,
      });
    const b = /^@@bare (\S+) (\S+) (\d+) (\d+) ([\d.]+) (.*)$/.exec(line);
    const cell = b ? cells.get(`${b[1]} ${b[2]}`) : undefined;
    if (b && cell) Object.assign(cell, { bareExit: Number(b[3]), bareKos: Number(b[4]), bareWall: Number(b[5]), bareCpu: parseTimesLine(b[6] as string) ?? Number.NaN });
    if (line.startsWith('@@addfail')) say(`dkms add refused ${line.split(' ')[1]}`);
  }
  return [...cells.values()];
}

async function kfarmBuild(
  dirs: readonly string[],
  kernels: readonly string[],
  env: Record<string, string>,
  noCache: boolean,
): Promise<{ seconds: number; exit: number; cells: number; cached: number; timeline: Timeline; cpu: CpuAccount }> {
  const out = await tempDir('bench-matrix-out');
  const { result, seconds, startedAtMs, endedAtMs, cpu } = await runAccounted(
    'node',
    [
      path.join(packageRoot, 'bin', 'kfarm.js'),
      'build',
      ...dirs,
      '--kernels',
      kernels.join(','),
      '--out',
      out,
      '--table',
      'summary',
      ...(noCache ? ['--no-cache'] : []),
      ...concurrencyArgs,
    ],
    {
      // info: the worker logs each container's phases, read back into the timeline
      env: { ...env, KFARM_LOG_LEVEL: 'info' },
      allowFailure: true,
      timeoutMs: 4 * 3600_000,
    },
  );
  const timeline = timelineOf(result.stderr, startedAtMs, endedAtMs);
  const report = await readFile(path.join(out, 'report.json'), 'utf8').then(
    (t) => JSON.parse(t) as { kernels?: Array<{ cached?: boolean }> },
    () => undefined,
  );
  const rows = report?.kernels ?? [];
  if (!report) say(`kfarm build wrote no report (exit ${result.exitCode}): ${result.stderr.slice(-500)}`);
  return { seconds, exit: result.exitCode, cells: rows.length, cached: rows.filter((r) => r.cached).length, timeline, cpu };
}

async function main(): Promise<void> {
  const images = (await listKfarmImages(runtime)).filter((i) => i.name === 'debian-12' && i.arch === 'x86_64');
  const held = images.flatMap((i) => i.kernels);
  const kernels = has(args, '--kernels') ? flag(args, '--kernels', '').split(',').filter(Boolean) : defaultDebian12Kernels(held);
  const chosen = kernels.map((k) => images.find((i) => i.kernels[0] === k));
  if (chosen.some((i) => !i) || kernels.length === 0)
    throw new Error(`kernels ${kernels.join(', ')}: not all held as debian-12 images (held: ${held.join(', ')}); run kfarm images sync debian-12`);
  const wanted = has(args, '--modules')
    ? flag(args, '--modules', '')
        .split(',')
        .map((m) => (m.endsWith('-dkms') ? m : `${m}-dkms`))
    : [...ARCHIVE_PACKAGES];

  say(`oracle image for ${kernels.join(', ')} (built once, cached by content)`);
  const oracle = await oracleImage(
    runtime,
    'debian-12',
    chosen.filter((i) => i !== undefined),
    () => undefined,
  );
  const cacheDir = process.env.KFARM_STATE_DIR ? path.join(process.env.KFARM_STATE_DIR, 'conformance') : path.join(os.homedir(), '.cache', 'kfarm', 'conformance');
  const corpus = await fetchReleaseCorpus(runtime, oracle, 'debian-12', wanted, cacheDir, false);
  const sources = corpus.sources;
  if (corpus.missing.length) say(`not in the archive: ${corpus.missing.join(', ')}`);
  say(`${sources.length} modules x ${kernels.length} kernels = ${sources.length * kernels.length} cells, ${cores} cores`);

  let cells: Cell[] = [];
  if (!has(args, '--skip-dkms')) {
    say('baseline A and B: dkms build and the bare make of each cell, one after the other, in one container');
    cells = await baselines(oracle, sources, kernels);
  }
  const tag = `${process.pid}`;
  const split: number[] = [];
  const splitTimelines: Timeline[] = [];
  const splitCpu: CpuAccount[] = [];
  let allTimeline: Timeline | undefined;
  let allCpu: CpuAccount | undefined;
  const splitEnv = { KFARM_STATE_DIR: await tempDir('bench-matrix-state'), KFARM_QUEUE: `bench-matrix-${tag}` };
  if (!has(args, '--skip-split')) {
    for (const s of sources) {
      const r = await kfarmBuild([s.dir], kernels, splitEnv, true);
      split.push(r.seconds);
      splitTimelines.push(r.timeline);
      splitCpu.push(r.cpu);
      const own = cells.filter((c) => c.label === s.label);
      const best = own.length
        ? `, best possible ${scheduleBound(
            own.map((c) => limitCost(c, s.label)),
            cores,
          ).toFixed(2)} s`
        : '';
      say(`kfarm cold (i) ${s.label}: ${r.seconds.toFixed(2)} s${best}, exit ${r.exit}, ${r.cells} cells`);
    }
  }
  let all: number | undefined;
  if (!has(args, '--skip-all')) {
    const r = await kfarmBuild(
      sources.map((s) => s.dir),
      kernels,
      { KFARM_STATE_DIR: await tempDir('bench-matrix-state'), KFARM_QUEUE: `bench-matrix-all-${tag}` },
      true,
    );
    all = r.seconds;
    allTimeline = r.timeline;
    allCpu = r.cpu;
    say(`kfarm cold (ii) all modules: ${r.seconds.toFixed(2)} s, exit ${r.exit}, ${r.cells} cells`);
  }
  const warm: Array<{ label: string; seconds: number; cells: number; cached: number }> = [];
  if (!has(args, '--skip-warm') && !has(args, '--skip-split')) {
    for (const s of sources) {
      const r = await kfarmBuild([s.dir], kernels, splitEnv, false);
      warm.push({ label: s.label, seconds: r.seconds, cells: r.cells, cached: r.cached });
    }
  }

  // ---- figures
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const A = sum(cells.map((c) => c.dkmsWall));
  const fallback = cells.filter((c) => !bareCounts(c));
  const cpuB = sum(cells.map((c) => limitCost(c, '').cpuS));
  const cpuDkms = sum(cells.map((c) => c.dkmsCpu));
  const B = cpuB / cores;
  const I = sum(split);
  const line = (name: string, s: number | undefined) => console.log(`  ${name.padEnd(46)} ${s === undefined || !Number.isFinite(s) ? '-' : `${s.toFixed(1)} s`}`);
  console.log(`matrix: ${sources.map((s) => s.label.replace(/-dkms$/, '')).join(', ')}`);
  console.log(`        x ${kernels.join(', ')} = ${sources.length * kernels.length} cells, ${cores} cores, ${new Date().toISOString()}`);
  if (cells.length) {
    const failed = cells.filter((c) => c.dkmsExit !== 0);
    line('A  dkms build, serial, one container', A);
    line(`B  bare make CPU ${cpuB.toFixed(1)} s / ${cores} cores (limit)`, B);
    console.log(
      `     (dkms build CPU ${cpuDkms.toFixed(1)} s; ${fallback.length} of ${cells.length} cells counted dkms's CPU: bare make built no .ko${fallback.length ? `: ${fallback.map((c) => `${c.label}/${c.kernel}`).join(' ')}` : ''})`,
    );
    if (failed.length) console.log(`     dkms build failed in ${failed.length} cells: ${failed.map((c) => `${c.label}/${c.kernel}`).join(' ')}`);
  }
  if (split.length) line('kfarm cold (i) one call per module, summed', I);
  if (all !== undefined) line('kfarm cold (ii) one call, all modules', all);
  const ratios = (name: string, k: number | undefined) => {
    if (k === undefined || !cells.length) return;
    console.log(`  ${name}: kfarm/B ${(k / B).toFixed(2)}x, kfarm/A ${(k / A).toFixed(2)}x; target kfarm <= 1.10 x B: ${targetLine(k / B, 1.1)}`);
  };
  ratios('(i) ', split.length ? I : undefined);
  ratios('(ii)', all);
  if (cells.length && (split.length || all !== undefined)) {
    // what no scheduler could remove: a call of 3 cells on 2 cores cannot end before its longest cell
    const boundI = scheduleBound(
      cells.map((c) => limitCost(c, c.label)),
      cores,
    );
    const boundII = scheduleBound(
      cells.map((c) => limitCost(c, 'all')),
      cores,
    );
    console.log(`  best possible schedule, per call max(cells' CPU / ${cores} cores, longest cell's wall), summed over the calls:`);
    if (split.length) console.log(`    (i)  ${boundI.toFixed(1)} s = ${(boundI / B).toFixed(2)} x B; kfarm (i) ${(I / boundI).toFixed(2)}x it`);
    if (all !== undefined) console.log(`    (ii) ${boundII.toFixed(1)} s = ${(boundII / B).toFixed(2)} x B; kfarm (ii) ${(all / boundII).toFixed(2)}x it`);
  }
  if (splitCpu.length || allCpu)
    console.log('  where the CPU went (host /proc/stat; kfarm process with its waited children; containers = the rest: builds, shims, runc, and anything else the host ran):');
  const base = { dkmsCpuS: cells.length ? cpuDkms : undefined, bareCpuS: cells.length ? cpuB : undefined, cores };
  if (splitCpu.length) console.log(`    (i)  summed over the calls: ${cpuLine(sumAccounts(splitCpu), base)}`);
  if (allCpu) console.log(`    (ii) ${cpuLine(allCpu, base)}`);
  console.log("  where kfarm's time went (from the worker's phase timings):");
  if (splitTimelines.length) console.log(`    (i)  summed over the calls: ${timelineLine(sumTimelines(splitTimelines))}`);
  if (allTimeline) console.log(`    (ii) ${timelineLine(allTimeline)}`);
  if (warm.length) {
    console.log(
      `  warm (nothing changed), whole process per module: median ${median(warm.map((w) => w.seconds)).toFixed(2)} s, max ${Math.max(...warm.map((w) => w.seconds)).toFixed(2)} s; target < 1 s: ${targetLine(Math.max(...warm.map((w) => w.seconds)), 1)}`,
    );
    for (const w of warm) console.log(`     ${w.label.padEnd(24)} ${w.seconds.toFixed(2)} s  ${w.cached}/${w.cells} cells cached`);
  }
}

function sumTimelines(ts: readonly Timeline[]): Timeline {
  const phases: Record<string, number> = {};
  for (const t of ts) for (const [n, v] of Object.entries(t.phases)) phases[n] = (phases[n] ?? 0) + v;
  return {
    workerS: ts.reduce((a, t) => a + t.workerS, 0),
    setupS: ts.reduce((a, t) => a + t.setupS, 0),
    tailS: ts.reduce((a, t) => a + t.tailS, 0),
    jobs: ts.reduce((a, t) => a + t.jobs, 0),
    phases,
  };
}

await main();
