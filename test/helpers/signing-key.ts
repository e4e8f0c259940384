import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../src/process/run.js';

/**
 * A module signing key and its self-signed certificate (PEM), as the kernel's certs/x509.genkey
 * makes one: CN as given, codeSigning, not a CA. Files `<name>.key.pem` and `<name>.cert.pem` in dir.
 */
export async function makeSigningKey(dir: string, name: string, cn: string, newkey = ['-newkey', 'rsa:2048']): Promise<{ key: string; cert: string }> {
  const config = path.join(dir, `${name}.genkey`);
  await writeFile(
    config,
    [
      '[ req ]',
      'distinguished_name = dn',
      'prompt = no',
      'x509_extensions = ext',
      '[ dn ]',
      `CN = ${cn}`,
      '[ ext ]',
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=digitalSignature',
      'extendedKeyUsage=codeSigning',
      'subjectKeyIdentifier=hash',
      '',
    ].join('\n'),
  );
  const key = path.join(dir, `${name}.key.pem`);
  const cert = path.join(dir, `${name}.cert.pem`);
  const made = await run('openssl', ['req', '-new', '-nodes', '-utf8', '-sha256', '-days', '36500', '-batch', '-x509', ...newkey, '-config', config, '-out', cert, '-keyout', key]);
  if (made.exitCode !== 0) throw new Error(`openssl req for ${name}: ${made.stderr}`);
  return { key, cert };
}
