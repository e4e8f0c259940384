/**
 * Benchmark: what one build container costs on top of the build it runs.
 *
 *   npm run build && npm run bench:overhead -- [--runs 10] [--source examples/hello] [--kernel <k>]
 *
 * kfarm: the worker's real path (src/worker/run-in-container.ts: the hardened container, the
 * source in on stdin, the output tar out and unpacked), one trivial (module, kernel) job at a
 * time. Its overhead = the whole call minus the `run` phase (start returned -> the container
 * exited: the build itself), from the phase timings the runtime measures (create, attach, start,
 * run, drain, inspect, remove). Yardstick: `docker run --rm <same image> true`, timed in the same
 * run, alternating with kfarm's. Medians of N. Not a test: it prints figures, never fails on them.
 */
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { buildOptions } from '../src/config/build-options.js';
import { payloadFor } from '../src/coordinator/build.js';
import { DockerRuntime } from '../src/executor/docker-runtime.js';
import { kernelTargets, listKfarmImages } from '../src/images/catalog.js';
import { rootLogger } from '../src/logging/logger.js';
import { packageRoot } from '../src/paths.js';
import { run } from '../src/process/run.js';
import { packSource } from '../src/source/source-archive.js';
import { runInContainer } from '../src/worker/run-in-container.js';
import { flag, median, targetLine } from './lib/stats.js';

const args = process.argv.slice(2);
const runs = Number(flag(args, '--runs', '10'));
const say = (line: string) => process.stderr.write(`[overhead] ${line}\n`);

async function main(): Promise<void> {
  const runtime = new DockerRuntime();
  const targets = kernelTargets((await listKfarmImages(runtime)).filter((i) => i.name === 'debian-12' && i.arch === 'x86_64'));
  const wanted = flag(args, '--kernel', '');
  const target = targets.find((t) => (wanted ? t.kernel === wanted : t.kernel.startsWith('6.1.'))) ?? targets[0];
  if (!target) throw new Error('no debian-12 amd64 kernel image held: run kfarm images sync debian-12');
  const source = await packSource(path.resolve(packageRoot, flag(args, '--source', 'examples/hello')));
  const payload = { ...payloadFor(source, target, buildOptions({}), `bench-overhead-${process.pid}`), imageRef: target.imageId };
  const labels = { 'kfarm.bench': `overhead-${process.pid}` };
  say(`${runs} runs of one ${source.dir} job on ${target.kernel}, alternating with docker run --rm ${target.imageRef} true`);

  const totals: number[] = [];
  const overheads: number[] = [];
  const bare: number[] = [];
  const phases: Record<string, number[]> = {};
  const container = async () => {
    const t0 = performance.now();
    let seen: Record<string, number> | undefined;
    const runtimeSpy = Object.assign(Object.create(runtime) as DockerRuntime, {
      runIsolated: async (r: Parameters<DockerRuntime['runIsolated']>[0]) => {
        const outcome = await runtime.runIsolated(r);
        seen = outcome.phases;
        return outcome;
      },
    });
    const out = await runInContainer({ runtime: runtimeSpy, logger: rootLogger, labels }, payload, source.tar);
    // as the worker does: the job ends once its container is removed (that runs alongside the unpacking)
    await out.removed;
    const total = performance.now() - t0;
    if (out.verdict !== 'built') throw new Error(`the trivial job did not build: ${out.message ?? out.reason ?? '?'}`);
    return { total, phases: seen ?? {} };
  };
  await container(); // warm-up: page cache, image layers
  for (let i = 0; i < runs; i++) {
    const k = await container();
    totals.push(k.total);
    overheads.push(k.total - (k.phases.run ?? 0));
    for (const [name, ms] of Object.entries(k.phases)) (phases[name] ??= []).push(ms);
    const t0 = performance.now();
    await run('docker', ['run', '--rm', target.imageRef, 'true']);
    bare.push(performance.now() - t0);
    say(`run ${i + 1}/${runs}: job ${k.total.toFixed(0)} ms (build ${(k.phases.run ?? 0).toFixed(0)} ms), docker run --rm true ${bare[i]?.toFixed(0)} ms`);
  }
  const o = median(overheads);
  const b = median(bare);
  console.log(`per-job overhead, ${runs} runs, medians (ms), kernel ${target.kernel}:`);
  console.log(`  whole job (runInContainer)             ${median(totals).toFixed(0)}`);
  console.log(
    `  phases: ${Object.entries(phases)
      .map(([n, xs]) => `${n} ${median(xs).toFixed(0)}`)
      .join(', ')}`,
  );
  console.log(`  overhead = whole job - run phase        ${o.toFixed(0)}   (create..remove, copy in/out, unpacking the output)`);
  console.log(`  docker run --rm <image> true            ${b.toFixed(0)}`);
  console.log(`  ratio overhead / bare docker run        ${(o / b).toFixed(2)}x; target <= 1.2x: ${targetLine(o / b, 1.2)}`);
}

await main();
