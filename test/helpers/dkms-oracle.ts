import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { packTar } from '../../src/executor/archive.js';
import { imageRef } from '../../src/images/catalog.js';
import { packageRoot } from '../../src/paths.js';

/**
 * Debian's real dkms in a container built from the kfarm debian-12 image: the oracle for
 * "does this tarball ingest". Cached by content (Dockerfile + build image id).
 */
const runtime = new DockerRuntime();

export async function oracleImage(): Promise<string> {
  const dockerfile = await readFile(path.join(packageRoot, 'test', 'fixtures', 'dkms-oracle', 'Dockerfile'));
  const base = await runtime.inspectImage(imageRef('debian-12'));
  if (!base) throw new Error('kfarm/debian-12:latest is missing: run `bash scripts/setup.sh` first');
  const tag = createHash('sha256').update(dockerfile).update(base.id).digest('hex').slice(0, 16);
  const ref = `kfarm-test/dkms-oracle:${tag}`;
  if (!(await runtime.inspectImage(ref))) {
    await runtime.buildImage({
      context: await packTar([{ path: 'Dockerfile', type: 'file', mode: 0o644, data: dockerfile }]),
      tag: ref,
      buildArgs: { BUILD_IMAGE: imageRef('debian-12') },
      labels: {},
      onLine: () => undefined,
    });
  }
  return ref;
}

/** Runs a bash script as root in a fresh oracle container with these files under /in. */
export async function runOracle(script: string, files: Record<string, Buffer>): Promise<{ exitCode: number; output: string }> {
  const image = await oracleImage();
  const input = await packTar([
    { path: 'in', type: 'directory', mode: 0o755 },
    ...Object.entries(files).map(([name, data]) => ({ path: `in/${name}`, type: 'file' as const, mode: 0o644, data })),
  ]);
  return runtime.runHelper(image, ['bash', '-c', script], input);
}
