/**
 * Benchmark: kfarm vs real `dkms build` run serially, on the same kernels, in the same run.
 *
 *   npm run build && node lib/bench/build-vs-dkms.js [--runs 3] [--source examples/hello]
 *
 * Baseline: Debian's dkms 3.0.10 in one container built from the debian-12 image, `dkms build
 * -k <kernel>` for each kernel one after the other (only the builds are timed, not the
 * container start). kfarm: the whole `kfarm build --no-cache` wall time through the CLI
 * (private Redis, one container per kernel, packing). Medians of N runs.
 * This is not a test: it prints numbers and never fails on them.
 */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DockerRuntime } from '../src/executor/docker-runtime.js';
import { listKfarmImages } from '../src/images/catalog.js';
import { packageRoot } from '../src/paths.js';
import { run } from '../src/process/run.js';
import { runOracle } from '../test/helpers/dkms-oracle.js';
import { tempDir } from '../test/helpers/kfarm-cli.js';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const runs = Number(flag('--runs', '3'));
const sourceDir = path.resolve(packageRoot, flag('--source', 'examples/hello'));

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

async function main(): Promise<void> {
  const kernels = (await listKfarmImages(new DockerRuntime())).flatMap((i) => i.kernels);
  const conf = await readFile(path.join(sourceDir, 'dkms.conf'), 'utf8');
  const name = /PACKAGE_NAME="?([^"\n]+)/.exec(conf)?.[1] ?? 'module';
  const version = /PACKAGE_VERSION="?([^"\n]+)/.exec(conf)?.[1] ?? '0';
  const files: Record<string, Buffer> = {};
  for (const f of await readdir(sourceDir)) files[f] = await readFile(path.join(sourceDir, f));

  const script = [
    'set -e',
    `mkdir -p /usr/src/${name}-${version} && cp -a /in/. /usr/src/${name}-${version}/`,
    `dkms add -m ${name} -v ${version} >/dev/null`,
    'start=$(date +%s.%N)',
    ...kernels.map((k) => `dkms build -m ${name} -v ${version} -k ${k} >/dev/null`),
    'end=$(date +%s.%N)',
    'echo "SECONDS=$(echo "$end - $start" | bc 2>/dev/null || awk "BEGIN{print $end - $start}")"',
  ].join('\n');

  const baseline: number[] = [];
  const kfarm: number[] = [];
  for (let i = 0; i < runs; i++) {
    const oracle = await runOracle(script, files);
    const seconds = Number(/SECONDS=([\d.]+)/.exec(oracle.output)?.[1]);
    if (!Number.isFinite(seconds)) throw new Error(`dkms baseline failed:\n${oracle.output}`);
    baseline.push(seconds);

    const out = await tempDir('bench');
    const t0 = performance.now();
    await run('node', [path.join(packageRoot, 'bin', 'kfarm.js'), 'build', sourceDir, '--out', out, '--no-cache'], {
      env: { KFARM_STATE_DIR: await tempDir('bench-state') },
    });
    kfarm.push((performance.now() - t0) / 1000);
    process.stderr.write(`run ${i + 1}/${runs}: dkms ${baseline[i]?.toFixed(2)} s, kfarm ${kfarm[i]?.toFixed(2)} s\n`);
  }
  const b = median(baseline);
  const k = median(kfarm);
  console.log(`module ${name} ${version}, ${kernels.length} kernels, ${runs} runs, medians:`);
  console.log(`  dkms build, serial (baseline)   ${b.toFixed(2)} s`);
  console.log(`  kfarm build --no-cache          ${k.toFixed(2)} s`);
  console.log(`  ratio baseline / kfarm          ${(b / k).toFixed(2)}x`);
}

await main();
