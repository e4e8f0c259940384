import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { packTar } from '../../src/executor/archive.js';
import { listKfarmImages } from '../../src/images/catalog.js';
import { packageRoot } from '../../src/paths.js';

/**
 * Debian's real dkms in a container built from the kfarm debian-12 images: the oracle for
 * "does this tarball ingest". Each kernel has its own image, so the oracle starts from one
 * of them and copies in the others' headers trees (/usr/src, /usr/lib/modules), which is what
 * `dkms ldtarball`, `status` and `install -k` look at. Cached by content (Dockerfile + image ids).
 */
const runtime = new DockerRuntime();

export async function oracleImage(): Promise<string> {
  const fixture = await readFile(path.join(packageRoot, 'test', 'fixtures', 'dkms-oracle', 'Dockerfile'), 'utf8');
  const images = (await listKfarmImages(runtime)).filter((i) => i.name === 'debian-12' && i.arch === 'x86_64');
  const first = images[0];
  if (!first) throw new Error('no kfarm debian-12 image: run `bash scripts/setup.sh` first');
  const copies = images.slice(1).flatMap((i) => [`COPY --from=${i.ref} /usr/src/ /usr/src/`, `COPY --from=${i.ref} /usr/lib/modules/ /usr/lib/modules/`]);
  const dockerfile = Buffer.from(`${fixture}\n${copies.join('\n')}\n`);
  const tag = createHash('sha256')
    .update(dockerfile)
    .update(images.map((i) => i.id).join(' '))
    .digest('hex')
    .slice(0, 16);
  const ref = `kfarm-test/dkms-oracle:${tag}`;
  if (!(await runtime.inspectImage(ref))) {
    await runtime.buildImage({
      context: await packTar([{ path: 'Dockerfile', type: 'file', mode: 0o644, data: dockerfile }]),
      tag: ref,
      buildArgs: { BUILD_IMAGE: first.ref },
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
