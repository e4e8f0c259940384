/**
 * Conformance: kfarm against each Debian release's own dkms, cell by cell.
 *
 *   npm run build && npm run conformance -- [--release debian-12] [--kernels <selector>] [--corpus dir]
 *
 * Per release: the oracle image (oracle-image.ts) runs the real dkms on every source, all cells
 * serially in one container (oracle-script.ts); kfarm builds the same sources for the same
 * kernels through its CLI (kfarm-run.ts); each (module, kernel) is compared (compare.ts) and
 * printed, with the agreement figure, and written to docs/conformance.md between markers.
 * A measurement, not a test: it exits 0 with disagreements, 1 only when it could not measure.
 */
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { describeError } from '../../src/errors/kfarm-error.js';
import { packTar, type TarEntry } from '../../src/executor/archive.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { kernelTargets, listKfarmImages, type KfarmImage } from '../../src/images/catalog.js';
import { selectKernels } from '../../src/matrix/kernel-selector.js';
import { packageRoot } from '../../src/paths.js';
import { judge, type Judged, type Side } from './compare.js';
import { ARCHIVE_PACKAGES, type CorpusSource, type Release } from './corpus.js';
import { fetchReleaseCorpus } from './corpus-fetch.js';
import { kfarmBuild, type KfarmRun } from './kfarm-run.js';
import { oracleImage } from './oracle-image.js';
import { parseOracleOutput, type OracleRun } from './oracle-output.js';
import { containerScript } from './scripts.js';
import { defaultKernels, parseOptions, type ConformanceOptions } from './options.js';
import { agreementLine, renderMarkdown, renderText, spliceSection, type ReleaseResult } from './render.js';
import { treeEntries } from './source-tree.js';

const runtime = new DockerRuntime();
const say = (line: string) => process.stderr.write(`[conformance] ${line}\n`);

function cacheDir(): string {
  const state = process.env.KFARM_STATE_DIR;
  return state ? path.join(state, 'conformance') : path.join(os.homedir(), '.cache', 'kfarm', 'conformance');
}

/** --corpus <dir>: each subdirectory holding a dkms.conf is one more source. */
async function extraSources(dirs: readonly string[]): Promise<CorpusSource[]> {
  const sources: CorpusSource[] = [];
  for (const dir of dirs) {
    const root = path.resolve(dir);
    for (const name of (await readdir(root)).sort()) {
      const sub = path.join(root, name);
      if (
        await stat(path.join(sub, 'dkms.conf')).then(
          (s) => s.isFile(),
          () => false,
        )
      ) {
        sources.push({ label: name.replace(/[^A-Za-z0-9_.+-]/g, '_'), origin: `corpus ${path.relative(packageRoot, sub) || sub}`, dir: sub });
      }
    }
  }
  return sources;
}

function kernelsOf(release: Release, images: readonly KfarmImage[], options: ConformanceOptions): KfarmImage[] {
  const own = images.filter((i) => i.name === release && i.arch === 'x86_64');
  const held = own.flatMap((i) => i.kernels);
  const chosen =
    options.kernels !== undefined
      ? selectKernels(options.kernels, kernelTargets(own))
          .map((t) => t.kernel)
          .slice(0, options.allKernels ? undefined : 3)
      : defaultKernels(held, options.allKernels ? Infinity : 3);
  return chosen.map((k) => own.find((i) => i.kernels[0] === k)).filter((i): i is KfarmImage => i !== undefined);
}

async function runOracle(image: string, sources: readonly CorpusSource[], kernels: readonly string[]): Promise<OracleRun> {
  const entries: TarEntry[] = [
    { path: 'in', type: 'directory', mode: 0o755 },
    { path: 'in/src', type: 'directory', mode: 0o755 },
  ];
  for (const s of sources) entries.push(...(await treeEntries(s.dir, `in/src/${s.label}`)));
  const { exitCode, output } = await runtime.runHelper(image, ['bash', '-c', await containerScript('oracle.sh'), 'oracle', ...kernels], await packTar(entries), 4 * 3600_000);
  const parsed = parseOracleOutput(output);
  if (!parsed.complete || exitCode !== 0) throw new Error(`the dkms oracle did not run to its end (exit ${exitCode}):\n${output.slice(-3000)}`);
  return parsed;
}

function dkmsSide(oracle: OracleRun, label: string, kernel: string): Side {
  const m = oracle.modules.find((x) => x.id === label);
  if (!m) return { verdict: 'error', files: [], destinations: [], detail: 'the oracle did not reach this module' };
  if (m.addExit !== 0) return { verdict: 'refused', files: [], destinations: [], detail: `dkms add exited ${m.addExit}: ${m.log.join(' / ')}` };
  const c = m.cells.find((x) => x.kernel === kernel);
  if (!c) return { verdict: 'error', files: [], destinations: [], detail: 'the oracle did not reach this kernel' };
  const install = c.installExit !== undefined && c.installExit !== 0 ? `; dkms install exited ${c.installExit}` : '';
  return {
    verdict: c.verdict,
    files: c.files,
    destinations: c.destinations,
    detail: `dkms build exited ${c.buildExit}${install}${c.log.length ? `: ${[...c.log.filter((l) => l.startsWith('make.log')).slice(0, 3), ...c.log.filter((l) => !l.startsWith('make.log')).slice(-1)].join(' / ')}` : ''}`,
  };
}

function kfarmSide(k: KfarmRun, kernel: string): Side {
  const side = k.sides?.get(kernel);
  if (side) return side;
  if (!k.sides && k.exitCode === 2) return { verdict: 'refused', files: [], destinations: [], detail: `kfarm build refused the module (exit 2): ${k.stderrTail}` };
  return {
    verdict: 'error',
    files: [],
    destinations: [],
    detail: k.sides ? 'no entry for this kernel in report.json' : `kfarm build exited ${k.exitCode} without report.json: ${k.stderrTail}`,
  };
}

async function measureRelease(
  release: Release,
  images: readonly KfarmImage[],
  options: ConformanceOptions,
  extra: readonly CorpusSource[],
  env: Record<string, string>,
): Promise<ReleaseResult | undefined> {
  const chosen = kernelsOf(release, images, options);
  const kernels = chosen.map((i) => i.kernels[0] ?? '');
  if (kernels.length === 0) {
    say(`${release}: no amd64 kernel image held${options.kernels ? ` matching ${options.kernels}` : ''}: run \`kfarm images sync ${release}\` first; skipped`);
    return undefined;
  }
  say(`${release}: kernels ${kernels.join(', ')}; building the oracle image (cached by content)`);
  const image = await oracleImage(runtime, release, chosen, () => undefined);
  const corpus = await fetchReleaseCorpus(runtime, image, release, options.packages ?? ARCHIVE_PACKAGES, cacheDir(), options.refresh);
  const sources = [...corpus.sources, ...extra];
  say(`${release}: ${sources.length} sources (${corpus.missing.length} packages not in the release); dkms and kfarm building`);
  const scratch = await mkdtemp(path.join(os.tmpdir(), `kfarm-conformance-${release}-`));
  const oracleRun = runOracle(image, sources, kernels);
  const kfarmRuns = new Map<string, KfarmRun>();
  for (const s of sources) {
    const t0 = performance.now();
    kfarmRuns.set(s.label, await kfarmBuild(s.dir, kernels, path.join(scratch, s.label), env));
    say(`${release}: kfarm ${s.label} done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  const oracle = await oracleRun;
  say(`${release}: dkms ${oracle.dkmsVersion} done`);
  const cells: Judged[] = [];
  for (const s of sources) {
    const k = kfarmRuns.get(s.label);
    for (const kernel of kernels) {
      cells.push(
        judge({
          module: s.label,
          kernel,
          dkms: dkmsSide(oracle, s.label, kernel),
          kfarm: k ? kfarmSide(k, kernel) : { verdict: 'error', files: [], destinations: [], detail: 'not run' },
        }),
      );
    }
  }
  return { release, dkmsVersion: oracle.dkmsVersion, kernels, sources: sources.map((s) => s.origin), missing: corpus.missing, cells };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  await runtime.ping();
  const images = await listKfarmImages(runtime);
  const extra = await extraSources(options.corpus);
  const env = { KFARM_STATE_DIR: await mkdtemp(path.join(os.tmpdir(), 'kfarm-conformance-state-')), KFARM_QUEUE: `conformance-${process.pid}` };
  const results: ReleaseResult[] = [];
  for (const release of options.releases) {
    const t0 = performance.now();
    const result = await measureRelease(release, images, options, extra, env);
    if (!result) continue;
    results.push(result);
    console.log(renderText(result));
    for (const c of result.cells.filter((x) => !x.agree)) console.log(`  ${c.module} ${c.kernel}: dkms: ${c.dkms.detail} | kfarm: ${c.kfarm.detail}`);
    console.log(`${release}: ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  }
  if (results.length === 0) return 1;
  console.log(results.map(agreementLine).join('\n'));
  if (options.doc) {
    const file = path.resolve(packageRoot, options.doc);
    let doc = await readFile(file, 'utf8').catch(() => "# Conformance: kfarm against each release's dkms\n");
    const when = new Date().toISOString().slice(0, 10);
    for (const r of results) doc = spliceSection(doc, r.release, renderMarkdown(r, when));
    await writeFile(file, doc);
    say(`wrote ${path.relative(packageRoot, file)}`);
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(`failed: ${describeError(err)}`);
    process.exit(1);
  },
);
