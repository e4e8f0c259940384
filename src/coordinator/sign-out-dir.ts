import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { KfarmError } from '../errors/kfarm-error.js';
import type { ContainerRuntime } from '../executor/runtime.js';
import { listKfarmImages, type KfarmImage } from '../images/catalog.js';
import { binariesOnlyLayout, fullLayout, type KernelBinaries } from '../packaging/dkms-tarball/layout.js';
import { readPackInputs } from '../packaging/pack-input.js';
import type { PackFormat } from '../packaging/packer.js';
import { writeTarGz } from '../packaging/write-file.js';
import { withOutDirStage, type OutDirStage } from '../report/out-dir.js';
import { readReport } from '../report/read-report.js';
import type { ArtifactReport, BuildReport, KernelReport } from '../report/report.js';
import { setSigning } from '../report/signing-report.js';
import { checkSigningSetup, hasModuleSignature, signModules, type SigningSetup } from '../signing/index.js';
import { decompressModule } from '../signing/decompress.js';
import { moduleCompression } from '../signing/module-files.js';
import { stageSigningFiles } from './stage-signing-files.js';

export interface SignOutDirRequest {
  outDir: string;
  /** a key file, or a PKCS#11 URI (the PIN from KFARM_PKCS11_PIN / _FILE, as for a build) */
  keyPath: string;
  certPath: string;
  /** KBUILD_SIGN_PIN: the passphrase of an encrypted key file */
  pin?: string;
}

export interface SignOutDirDeps {
  runtime: ContainerRuntime;
  logger: Logger;
  signal: AbortSignal;
  /** labels of the signer containers (host, pid, instance: reaped as a build's are) */
  labels: Record<string, string>;
  /** a progress line (stderr) */
  say: (line: string) => void;
}

export interface SignOutDirOutcome {
  report: BuildReport;
  /** how many modules were signed, over how many kernels */
  modules: number;
  kernels: number;
  /** modules that carried a signature already (another key's, or this one's): it was replaced */
  resigned: number;
  /** the package formats made again from the signed modules */
  formats: PackFormat[];
  subject: string;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const rowKey = (module: string, version: string, kernel: string, arch: string) => `${module}\0${version}\0${kernel}\0${arch}`;

/**
 * `kfarm sign <out-dir>`: signs the modules of an earlier build without rebuilding, the way
 * `kfarm build --sign-key` does (src/signing/: each kernel's own sign-file in its image for a
 * key file, the host through OpenSSL's pkcs11 engine for a key in a token, every signature
 * checked with openssl cms before it is written). Every DKMS tarball is written again with
 * the signed modules, every package format the out dir has is packed again from them, the
 * enrolment files are added, and report.json (module and tarball sha256s, `signing`), its
 * views and SHA256SUMS are rewritten: all through the out dir's one writer, one commit, so a
 * failure or Ctrl-C leaves the out dir byte for byte as it was.
 *
 * A module that is signed already (by another key, or signed twice) is signed again: its old
 * signature is cut off first, as sign.sh and signModules do for a build, so the result is the
 * same bytes as signing the unsigned module (the kernel checks only the last signature; one
 * appended after another would cover the first as if it were code). The load results of an
 * earlier `kfarm verify` were for the unsigned bytes: they are dropped from the rows signed.
 */
export async function signOutDir(request: SignOutDirRequest, deps: SignOutDirDeps): Promise<SignOutDirOutcome> {
  const { outDir } = request;
  // read (and checked) before anything is staged: a directory that is no out dir is told so, and left alone
  const before = await readReport(outDir);
  const rows = before.kernels.filter((k) => k.verdict === 'built' && k.modules.length > 0);
  if (rows.length === 0) {
    throw new KfarmError('BAD_OPTION', `${outDir} holds no built module to sign`, {
      context: { outDir },
      hint: 'Sign the --out dir of a build in which at least one kernel built.',
    });
  }
  const images = signingImagesOf(rows, await listKfarmImages(deps.runtime));
  // the key, the certificate and every kernel's sign-file and hash, before anything is staged
  const setup = await checkSigningSetup({
    keyPath: request.keyPath,
    certPath: request.certPath,
    images,
    runtime: deps.runtime,
    labels: deps.labels,
    ...(request.pin !== undefined ? { pin: request.pin } : {}),
  });
  return withOutDirStage(outDir, (stage) => signStaged(stage, setup, deps));
}

/**
 * The images that hold the rows' kernels (by the image name each row was built in), one
 * kernel each as checkSigningSetup wants them. A kernel whose image is not on this host
 * cannot be signed for (its sign-file and hash are in it): refused, saying how to get it.
 */
export function signingImagesOf(rows: readonly Pick<KernelReport, 'kernel' | 'image' | 'release'>[], held: readonly KfarmImage[]): KfarmImage[] {
  const out = new Map<string, KfarmImage>();
  for (const row of rows) {
    const image = held.find((i) => i.name === row.image && i.kernels.includes(row.kernel));
    if (!image) {
      throw new KfarmError('BAD_OPTION', `cannot sign the modules for ${row.kernel}: no kfarm image of ${row.image} holds that kernel on this host`, {
        context: { kernel: row.kernel, image: row.image },
        hint: `Modules are signed with the kernel's own sign-file and hash, from its image: get it with \`kfarm images sync ${row.release} --kernels ${row.kernel}\`.`,
      });
    }
    out.set(`${image.name}\0${row.kernel}`, { ...image, kernels: [row.kernel] });
  }
  return [...out.values()];
}

async function signStaged(stage: OutDirStage, setup: SigningSetup, deps: SignOutDirDeps): Promise<SignOutDirOutcome> {
  const report = await stage.readReport();
  // every module read back and checked against report.json's sha256 (pack-input.ts)
  const inputs = await readPackInputs(stage, process.env, report);
  const rowsByKey = new Map(report.kernels.map((k) => [rowKey(k.module ?? report.module, k.version ?? report.version, k.kernel, k.arch), k]));
  let modules = 0;
  let kernels = 0;
  let resigned = 0;
  const fullTarballs = new Map<string, ArtifactReport>();
  for (const input of inputs) {
    const pkg = { name: input.name, version: input.version, dkmsConf: input.dkmsConf };
    const binaries: KernelBinaries[] = [];
    for (const k of input.kernels) {
      if (deps.signal.aborted) throw new KfarmError('INTERRUPTED', 'signing interrupted: the out dir is as it was');
      if (k.modules.length === 0) {
        // built, but nothing to install (a dkms.conf with no module for it): its tarball stays, the full one keeps it
        binaries.push({ kernel: k.kernel, arch: k.arch, modules: [], makeLog: k.makeLog, kernelConfig: k.kernelConfig });
        continue;
      }
      const row = rowsByKey.get(rowKey(input.name, input.version, k.kernel, k.arch));
      const signer = setup.kernels.find((s) => s.kernel === k.kernel);
      if (!row?.tarball || !signer) throw new Error(`no row or signer for ${input.name} on ${k.kernel}`); // both come from this report: a bug
      for (const m of k.modules) {
        const elf = await decompressModule(m.data, moduleCompression(m.fileName), `${m.fileName} for ${k.kernel}`);
        if (hasModuleSignature(elf)) resigned++;
      }
      const signed = await signModules({
        runtime: deps.runtime,
        image: signer.image,
        kernel: k.kernel,
        modules: k.modules.map((m) => ({ fileName: m.fileName, data: m.data })),
        key: setup.key,
        hash: signer.hash,
        labels: deps.labels,
        logger: deps.logger,
        signal: deps.signal,
      });
      const data = new Map(signed.map((m) => [m.fileName, m.data]));
      const kernel: KernelBinaries = {
        kernel: k.kernel,
        arch: k.arch,
        modules: k.modules.map((m) => ({ fileName: m.fileName, data: data.get(m.fileName) as Buffer })),
        makeLog: k.makeLog,
        kernelConfig: k.kernelConfig,
      };
      binaries.push(kernel);
      // the kernel's tarball again, in its place, with the signed modules (the rest as it was)
      const rel = row.tarball.path;
      const written = await stage.stageWith(rel, (target) => writeTarGz(target, binariesOnlyLayout(pkg, kernel)));
      row.tarball = { path: rel, sha256: written.sha256, size: written.size };
      row.modules = row.modules.map((m) => {
        const bytes = data.get(m.file);
        return bytes ? { ...m, sha256: sha256(bytes), size: bytes.length } : m;
      });
      // a load check of an earlier `kfarm verify` booted the unsigned bytes
      delete row.load;
      modules += signed.length;
      kernels++;
      deps.say(`  ${k.kernel}: signed ${signed.map((m) => m.fileName).join(', ')}`);
    }
    // the module's full tarball (source + every kernel) again, where report.json names it
    const entry = (report.modules ?? []).find((m) => m.name === input.name && m.version === input.version);
    const full = entry?.fullTarball ?? (report.module === input.name && report.version === input.version ? report.fullTarball : undefined);
    if (full && binaries.length > 0) {
      const written = await stage.stageWith(full.path, (target) => writeTarGz(target, fullLayout(binaries, input.source)));
      fullTarballs.set(full.path, { path: full.path, sha256: written.sha256, size: written.size });
    }
  }
  for (const m of report.modules ?? []) if (m.fullTarball) m.fullTarball = fullTarballs.get(m.fullTarball.path) ?? m.fullTarball;
  if (report.fullTarball) report.fullTarball = fullTarballs.get(report.fullTarball.path) ?? report.fullTarball;
  setSigning(report, await stageSigningFiles(stage, setup.key));
  await stage.stageReports(report);
  // every package format the out dir has, packed again from the signed tarballs just staged (as `kfarm pack` would)
  const formats = [...new Set((report.packages ?? []).map((p) => p.format as PackFormat))];
  if (formats.length > 0) {
    deps.say(`  packing ${formats.join(', ')} again with the signed modules`);
    await (await import('../packaging/pack-out-dir.js')).packOutDir(stage, formats, deps.logger);
  }
  // the last moment to stop: after this the swap is promised
  if (deps.signal.aborted) throw new KfarmError('INTERRUPTED', 'signing interrupted: the out dir is as it was');
  return { report: await stage.readReport(), modules, kernels, resigned, formats, subject: setup.key.subject };
}
