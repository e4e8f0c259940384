import path from 'node:path';
import type { Logger } from 'pino';
import { KfarmError } from '../errors/kfarm-error.js';
import { kmmModuleYaml, kmmModuleYamlName } from '../packaging/kmm/layout.js';
import { makeDirs } from '../util/make-dir.js';
import { writeAtomic } from '../util/write-atomic.js';
import { moduleNameOf, readOciImages } from './oci-inputs.js';
import { moduleMappings, ociTargets, planOciPublish, type OciPlanStep } from './oci-plan.js';
import { openSkopeo, type OciCredentials, type OciTls } from './oci-skopeo.js';

export interface PublishOciOptions {
  outDirs: readonly string[];
  /** `host[:port][/path]`: each module's images go to `<registry>/<module>` */
  registry: string;
  credentials?: OciCredentials;
  tls?: OciTls;
  /** where the rewritten Module manifests go, one `<module>-kmm-module.yaml` per module */
  manifestDir: string;
  logger: Logger;
}

export interface PublishOciResult {
  images: Array<{ reference: string; pinned: string; kernel: string; module: string; action: 'pushed' | 'present' }>;
  manifests: string[];
}

/**
 * Publishes the KMM images of out dirs to an OCI registry (issue 22) and writes each module's
 * Module manifest with its kernelMappings pointing at the pushed images by digest.
 *
 * 1. Reads and checks everything before the registry hears from it (oci-inputs.ts): only what
 *    report.json lists, each file against its sha256.
 * 2. Asks the registry what each tag names now; credentials it refuses, or a registry it cannot
 *    reach, stop the publish here, before anything is pushed. A tag naming other bytes refuses
 *    the whole publish (oci-plan.ts); the same bytes are left alone (an idempotent re-publish).
 * 3. Pushes the missing images, each checked to have kept its digest, then writes the manifests.
 */
export async function publishOci(options: PublishOciOptions): Promise<PublishOciResult> {
  const registryHost = options.registry.split('/')[0] ?? '';
  const log = options.logger.child({ registry: options.registry });
  const images = await readOciImages(options.outDirs);
  if (images.length === 0) {
    throw new KfarmError('BAD_OPTION', `no KMM image in ${options.outDirs.join(', ')}: their report.json lists none`, {
      hint: 'Build with --format kmm (or `kfarm pack <out-dir> --format kmm`) first.',
    });
  }
  const targets = ociTargets(images, options.registry);
  const modules = moduleMappings(targets);
  const moduleNames = new Map([...modules].map(([module, m]) => [module, moduleNameOf(m.moduleYaml, module)]));

  const skopeo = await openSkopeo({ registryHost, credentials: options.credentials, tls: options.tls ?? {} });
  const result: PublishOciResult = { images: [], manifests: [] };
  try {
    const existing = new Map<string, string | undefined>();
    for (const t of targets) existing.set(t.reference, await skopeo.digestOf(t.reference));
    const plan: OciPlanStep[] = planOciPublish(targets, existing);
    for (const { target, action } of plan) {
      if (action === 'push') {
        const started = Date.now();
        const stored = await skopeo.push(target.archive, target.reference);
        if (stored !== target.digest) {
          // --preserve-digests should make this impossible; a registry that rewrites manifests
          // would leave the Module manifest naming an image that does not exist
          throw new KfarmError('COMMAND_FAILED', `the registry stored ${target.reference} as ${stored}, not as the archive's ${target.digest}`, {
            context: { reference: target.reference },
          });
        }
        log.info({ image: target.reference, digest: target.digest, ms: Date.now() - started }, 'KMM image pushed');
      } else {
        log.info({ image: target.reference, digest: target.digest }, 'KMM image already published with these bytes');
      }
      result.images.push({ reference: target.reference, pinned: target.pinned, kernel: target.kernel, module: target.module, action: action === 'push' ? 'pushed' : 'present' });
    }
  } finally {
    await skopeo.close();
  }

  await makeDirs(options.manifestDir);
  for (const [module, m] of modules) {
    const file = path.join(options.manifestDir, kmmModuleYamlName(module));
    await writeAtomic(file, Buffer.from(kmmModuleYaml({ name: module, version: m.version }, m.mappings, moduleNames.get(module)!)));
    result.manifests.push(file);
    log.info({ module, manifest: file, kernels: m.mappings.length }, 'KMM Module manifest written (images by digest)');
  }
  return result;
}
