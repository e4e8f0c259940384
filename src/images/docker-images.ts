import { run } from '../process/run.js';

/**
 * Image removal and sizes, through the docker CLI: the ContainerRuntime interface (src/executor)
 * has neither yet. Removing a tag of an image other images are built FROM only untags it.
 */
export async function removeImageTags(refs: readonly string[]): Promise<{ ok: boolean; output: string }> {
  if (refs.length === 0) return { ok: true, output: '' };
  const result = await run('docker', ['image', 'rm', ...refs], { allowFailure: true, timeoutMs: 120_000 });
  return { ok: result.exitCode === 0, output: (result.stderr || result.stdout).trim() };
}

/** bytes of the image, layers shared with others included (what `docker image inspect` says) */
export async function imageSize(ref: string): Promise<number | undefined> {
  const result = await run('docker', ['image', 'inspect', '--format', '{{.Size}}', ref], { allowFailure: true, timeoutMs: 30_000 });
  const n = Number(result.stdout.trim());
  return result.exitCode === 0 && Number.isFinite(n) ? n : undefined;
}

/** bytes of each image (by id), in one docker call; images that are gone are left out */
export async function imageSizes(refs: readonly string[]): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  if (refs.length === 0) return sizes;
  const result = await run('docker', ['image', 'inspect', '--format', '{{.Id}} {{.Size}}', ...refs], { allowFailure: true, timeoutMs: 60_000 });
  for (const line of result.stdout.split('\n')) {
    const [id, size] = line.trim().split(' ');
    if (id && size && Number.isFinite(Number(size))) sizes.set(id, Number(size));
  }
  return sizes;
}
