import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { KfarmError } from '../errors/kfarm-error.js';
import { extractTar } from '../executor/archive.js';
import { kmmModuleYamlName } from '../packaging/kmm/layout.js';
import { readReport } from '../report/read-report.js';
import type { OciImage } from './oci-plan.js';

/**
 * The KMM images of out dirs, as the OCI plan takes them: only the `kmm` files each
 * `report.json` lists, each read once, hashed and compared with the report's sha256 before
 * anything parses it (a file changed since the build: nothing is published). From each image
 * archive (an OCI layout, layout.ts) the manifest digest from index.json and the kernel, module
 * and version from the config's labels; from the module's Module YAML its modprobe moduleName.
 * Reads only.
 */
const ARCHIVE_LIMITS = { maxBytes: 1024 * 1024 * 1024, maxEntries: 10_000, allowSymlinks: false };

export async function readOciImages(outDirs: readonly string[]): Promise<OciImage[]> {
  const images: OciImage[] = [];
  for (const outDir of outDirs) {
    const report = await readReport(outDir);
    const listed = (report.packages ?? []).filter((p) => p.format === 'kmm');
    const yamls = new Map<string, string>();
    const archives: Array<{ file: string; data: Buffer }> = [];
    for (const entry of listed) {
      const file = path.join(outDir, entry.path);
      const data = await readFile(file).catch((err: NodeJS.ErrnoException) => {
        throw new KfarmError('PUBLISH_REFUSED', `${file}, listed in ${outDir}/report.json, cannot be read (${err.code ?? err.message})`, { context: { outDir, file } });
      });
      const sha256 = createHash('sha256').update(data).digest('hex');
      if (sha256 !== entry.sha256 || data.length !== entry.size) {
        throw new KfarmError('PUBLISH_REFUSED', `${file} is not the file ${outDir}/report.json lists (sha256 ${sha256}, the report says ${entry.sha256}): nothing was pushed`, {
          context: { outDir, file },
          hint: 'The file changed after the build: build (or `kfarm pack --format kmm`) again rather than publish an image kfarm did not make.',
        });
      }
      if (file.endsWith('.oci.tar')) archives.push({ file, data });
      else if (file.endsWith('-kmm-module.yaml')) yamls.set(path.basename(file), data.toString('utf8'));
    }
    for (const { file, data } of archives) {
      const image = await describeArchive(file, data);
      const yaml = yamls.get(kmmModuleYamlName(image.module));
      if (yaml === undefined) {
        throw new KfarmError('PUBLISH_REFUSED', `${outDir}/report.json lists the KMM image ${file} but not its ${kmmModuleYamlName(image.module)}`, {
          context: { outDir, file },
          hint: 'Pack the out dir again: `kfarm pack <out-dir> --format kmm`.',
        });
      }
      images.push({ ...image, moduleYaml: yaml });
    }
  }
  return images;
}

interface OciIndex {
  manifests?: Array<{ mediaType?: string; digest?: string }>;
}
interface OciManifest {
  config?: { digest?: string };
}
interface OciConfig {
  config?: { Labels?: Record<string, string> };
}

async function describeArchive(file: string, data: Buffer): Promise<Omit<OciImage, 'moduleYaml'>> {
  const bad = (why: string) => new KfarmError('PUBLISH_REFUSED', `${file} is not a KMM image kfarm wrote: ${why}`, { context: { file } });
  const entries = await extractTar(data, ARCHIVE_LIMITS, file);
  const member = (name: string) => {
    const e = entries.find((x) => x.path === name && x.type === 'file');
    if (!e?.data) throw bad(`no ${name}`);
    return e.data;
  };
  const blob = (digest: string | undefined) => {
    if (!digest || !/^sha256:[0-9a-f]{64}$/.test(digest)) throw bad(`a digest ${String(digest)}`);
    const bytes = member(`blobs/sha256/${digest.slice('sha256:'.length)}`);
    if (`sha256:${createHash('sha256').update(bytes).digest('hex')}` !== digest) throw bad(`blob ${digest} does not match its digest`);
    return JSON.parse(bytes.toString('utf8')) as unknown;
  };
  const index = JSON.parse(member('index.json').toString('utf8')) as OciIndex;
  if (index.manifests?.length !== 1) throw bad('index.json does not list exactly one image');
  const digest = index.manifests[0]!.digest!;
  const manifest = blob(digest) as OciManifest;
  const labels = (blob(manifest.config?.digest) as OciConfig).config?.Labels ?? {};
  const kernel = labels['io.kfarm.kernel'];
  const module = labels['io.kfarm.module'];
  const version = labels['io.kfarm.version'];
  if (!kernel || !module || !version) throw bad('its config has no io.kfarm.kernel, io.kfarm.module and io.kfarm.version labels');
  return { module, version, kernel, archive: file, digest };
}

/** modprobe's moduleName of a Module YAML the kmm packer wrote. */
export function moduleNameOf(yamlText: string, module: string): string {
  const parsed = parseYaml(yamlText) as { kind?: string; spec?: { moduleLoader?: { container?: { modprobe?: { moduleName?: unknown } } } } } | null;
  const name = parsed?.spec?.moduleLoader?.container?.modprobe?.moduleName;
  if (parsed?.kind !== 'Module' || typeof name !== 'string' || name === '') {
    throw new KfarmError('PUBLISH_REFUSED', `${kmmModuleYamlName(module)} is not a KMM Module with a modprobe moduleName`, { context: { module } });
  }
  return name;
}
