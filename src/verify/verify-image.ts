import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { packTar } from '../executor/archive.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import { KfarmError } from '../errors/kfarm-error.js';
import { ensureBaseImage } from '../images/base-image.js';
import { LABEL_RECIPE } from '../images/catalog.js';
import { imagesDir } from '../paths.js';
import { cleanText } from '../util/clean-text.js';

export const VERIFY_IMAGE = 'kfarm/verify:latest';

/**
 * kfarm/verify (QEMU, busybox, kmod; OVMF, shim, GRUB, virt-fw-vars for --secure-boot), built from
 * images/verify/ on the bootstrapped bookworm root like the build images (no registry); rebuilt
 * only when its recipe or base changed. Returns the recipe's own tag (kfarm/verify:r-<hash>);
 * :latest follows the newest build.
 */
export async function ensureVerifyImage(runtime: ContainerRuntime, logger: Logger, say: (line: string) => void): Promise<string> {
  const dir = path.join(imagesDir, 'verify');
  const [dockerfile, sources] = await Promise.all([readFile(path.join(dir, 'Dockerfile')), readFile(path.join(dir, 'debian.sources'))]);
  const base = await ensureBaseImage(runtime, logger, (line) => logger.debug(line), 'bookworm');
  const baseInfo = await runtime.inspectImage(base);
  if (!baseInfo) throw new KfarmError('IMAGE_NOT_FOUND', `base image ${base} is not present`);
  const hash = createHash('sha256').update(dockerfile).update('\0').update(sources).update(`\0base\0${baseInfo.id}`).digest('hex');
  // Boots run the image of this recipe by its own tag: another checkout on the same engine (a CI
  // clone of an older commit) that rebuilds :latest from its recipe cannot swap it under this run.
  const pinnedTag = `r-${hash.slice(0, 16)}`;
  const pinned = `kfarm/verify:${pinnedTag}`;
  if ((await runtime.inspectImage(pinned))?.labels[LABEL_RECIPE] === hash) return pinned;
  const existing = await runtime.inspectImage(VERIFY_IMAGE);
  if (existing?.labels[LABEL_RECIPE] === hash) {
    await runtime.tagImage(existing.id, 'kfarm/verify', pinnedTag);
    return pinned;
  }
  say(`building the verify image ${VERIFY_IMAGE} (QEMU, busybox, kmod, OVMF, shim, GRUB)`);
  const tail: string[] = [];
  try {
    await runtime.buildImage({
      context: await packTar([
        { path: 'Dockerfile', type: 'file', mode: 0o644, data: dockerfile },
        { path: 'debian.sources', type: 'file', mode: 0o644, data: sources },
      ]),
      tag: pinned,
      buildArgs: { BASE_IMAGE: base },
      labels: { [LABEL_RECIPE]: hash, 'io.kfarm.verify': '1' },
      onLine: (line) => {
        logger.debug({ image: VERIFY_IMAGE }, line);
        const clean = cleanText(line, 300).trim();
        if (clean) tail.push(clean);
        if (tail.length > 5) tail.shift();
      },
    });
  } catch (err) {
    throw new KfarmError('IMAGE_BUILD_FAILED', `the verify image did not build: ${tail.join(' | ').slice(-400)}`, {
      cause: err,
      hint: 'It needs the Debian archive (qemu-system-x86, qemu-system-arm, busybox-static, kmod, cpio); rerun to retry.',
    });
  }
  if (!(await runtime.inspectImage(pinned))) throw new KfarmError('IMAGE_BUILD_FAILED', `the build of ${pinned} left no image`);
  await runtime.tagImage(pinned, 'kfarm/verify', 'latest');
  return pinned;
}
