import { z } from 'zod';
import { KfarmError } from '../errors/kfarm-error.js';
import { isInsidePath } from './read-report.js';
import type { ArtifactReport, BuildReport } from './report.js';

/**
 * report.json's `signing`, written by `kfarm build --sign-key` and `kfarm sign`: who signed the
 * modules (as modinfo's signer and sig_key show it) and the files a fleet enrols to trust them
 * (signing-cert.der, ENROLL.md), each with its sha256 so SHA256SUMS vouches for them as for
 * the modules they go with. A report without it holds unsigned modules, and its out dir's
 * enrolment files (an earlier signed build's) are neither listed nor touched, as any other
 * file the report does not name. The field is read here, checked as read-report.ts checks
 * the rest (its paths stay inside the out dir); report.json keeps it through every rewrite.
 */
export interface SigningReport {
  /** the certificate's subject, RFC 2253 */
  subject: string;
  /** the certificate's serial in hex (modinfo's sig_key) */
  serial: string;
  files: ArtifactReport[];
}

const schema = z
  .object({
    subject: z.string().max(4096),
    serial: z.string().max(256),
    files: z
      .array(
        z
          .object({
            path: z.string().max(1024).refine(isInsidePath, 'not a path inside the out dir'),
            sha256: z.string().regex(/^[0-9a-f]{64}$/),
            size: z.number().int().nonnegative(),
          })
          .passthrough(),
      )
      .max(16),
  })
  .passthrough();

/** The report's `signing`, checked; undefined for unsigned modules. A malformed one is bad input (exit 2). */
export function signingOf(report: BuildReport): SigningReport | undefined {
  const raw = (report as BuildReport & { signing?: unknown }).signing;
  if (raw === undefined) return undefined;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new KfarmError('BAD_OPTION', `report.json is not a kfarm report: signing.${issue?.path.join('.') ?? ''}: ${issue?.message ?? ''}`, {
      hint: 'It was edited: sign again with `kfarm sign <out-dir>` or build again.',
    });
  }
  return parsed.data;
}

/** `report` saying its modules are signed so (a report's last key, as a writer adds it). */
export function setSigning(report: BuildReport, signing: SigningReport): void {
  (report as BuildReport & { signing?: SigningReport }).signing = signing;
}
