import { KfarmError } from '../../errors/kfarm-error.js';
import type { ContainerRuntime } from '../../executor/runtime.js';
import { run } from '../../process/run.js';

/**
 * Loads a KMM image archive into the local Docker. The runtime has no image load yet, so this
 * runs `docker load -i` (Docker 20.10 reads the archive's manifest.json; Docker 25+ reads the
 * OCI index too), then checks through the runtime that the image is there with its labels.
 * Returns the loaded reference.
 */
export async function loadKmmImage(ociArchive: string, runtime: Pick<ContainerRuntime, 'inspectImage'>): Promise<string> {
  const result = await run('docker', ['load', '-i', ociArchive], { allowFailure: true, timeoutMs: 300_000 });
  const loaded = /^Loaded image: (\S+)$/m.exec(result.stdout)?.[1];
  if (result.exitCode !== 0 || !loaded) {
    throw new KfarmError('DOCKER_ERROR', `docker load -i ${ociArchive} failed (exit ${result.exitCode}): ${(result.stderr || result.stdout).trim().slice(-300)}`, {
      context: { archive: ociArchive },
      hint: 'Is Docker running and the archive one `kfarm pack --format kmm` wrote?',
    });
  }
  const image = await runtime.inspectImage(loaded);
  if (!image?.labels['io.kfarm.kernel']) {
    throw new KfarmError('DOCKER_ERROR', `docker load said it loaded ${loaded}, but the engine has no such kfarm KMM image`, { context: { image: loaded } });
  }
  return loaded;
}
