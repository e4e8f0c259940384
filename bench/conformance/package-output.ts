/**
 * Pure: the download helper's output (DOWNLOAD_SCRIPT) → the .deb files it fetched, base64
 * between markers, and the packages the release does not have.
 */
export interface DownloadedDeb {
  package: string;
  file: string;
  data: Buffer;
}

export interface DownloadOutput {
  debs: DownloadedDeb[];
  missing: string[];
  failed: string[];
  complete: boolean;
}

const PACKAGE = /^[a-z0-9][a-z0-9+.-]*$/;
const DEB_FILE = /^[A-Za-z0-9_.+~%-]+\.deb$/;

export function parseDownloadOutput(output: string): DownloadOutput {
  const out: DownloadOutput = { debs: [], missing: [], failed: [], complete: false };
  const lines = output.split('\n').map((l) => l.replace(/\r$/, ''));
  for (let i = 0; i < lines.length; i++) {
    const [tag, pkg = '', file = ''] = (lines[i] ?? '').split(' ');
    if (tag === '@@missing' && PACKAGE.test(pkg)) out.missing.push(pkg);
    else if (tag === '@@failed' && PACKAGE.test(pkg)) out.failed.push(pkg);
    else if (tag === '@@end') out.complete = true;
    else if (tag === '@@deb' && PACKAGE.test(pkg) && DEB_FILE.test(file)) {
      const body = lines[i + 1] ?? '';
      if (lines[i + 2] === '@@deb-end' && /^[A-Za-z0-9+/=]+$/.test(body)) {
        out.debs.push({ package: pkg, file, data: Buffer.from(body, 'base64') });
        i += 2;
      } else out.failed.push(pkg);
    }
  }
  return out;
}
