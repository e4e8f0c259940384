import type { OutDirStage } from '../report/out-dir.js';
import type { SigningReport } from '../report/signing-report.js';
import { enrollFiles } from '../signing/enroll-files.js';

/**
 * What a fleet needs to trust signed modules, staged beside them (`kfarm build --sign-key`,
 * `kfarm sign`): the certificate in DER and ENROLL.md, and the report's `signing` naming them
 * with their sha256, so SHA256SUMS lists them (report/signing-report.ts).
 */
export async function stageSigningFiles(stage: OutDirStage, cert: { certPem: Buffer; subject: string; serial: string }): Promise<SigningReport> {
  const files: SigningReport['files'] = [];
  for (const f of await enrollFiles(cert)) {
    const written = await stage.stageFile(f.name, f.data);
    files.push({ path: f.name, sha256: written.sha256, size: written.size });
  }
  return { subject: cert.subject, serial: cert.serial, files };
}
