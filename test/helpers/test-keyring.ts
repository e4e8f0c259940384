import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { tempDir } from './kfarm-cli.js';

/**
 * A real OpenPGP keyring for archive tests, made with gpg: the "archive" key is in `keyring`
 * (what a test hands kfarm in place of Debian's), the "stranger" key is not. clearsign()
 * signs as `gpg --clearsign` signs an InRelease, with one key or several.
 */
export interface TestKeyring {
  keyring: string;
  clearsign(text: string | Buffer, signers?: ReadonlyArray<'archive' | 'stranger'>): Promise<Buffer>;
  /** an armoured detached signature, as a Release.gpg */
  detachSign(text: string | Buffer, signers?: ReadonlyArray<'archive' | 'stranger'>): Promise<Buffer>;
  close(): Promise<void>;
}

const UID = { archive: 'kfarm test archive <archive@kfarm.invalid>', stranger: 'kfarm test stranger <stranger@kfarm.invalid>' } as const;

export async function testKeyring(): Promise<TestKeyring> {
  const dir = await tempDir('gpg');
  const home = path.join(dir, 'home');
  const env = { GNUPGHOME: home };
  await mkdir(home, { mode: 0o700 });
  // stripFinalNewline off: a binary keyring whose last byte happens to be 0x0a (1 key in 256)
  // would lose it, and every signature check against it fail (seen as a rare archive-test flake)
  const gpg = (args: string[], input?: string | Buffer) =>
    execa('gpg', ['--batch', '--yes', '--quiet', ...args], { env, encoding: 'buffer', stripFinalNewline: false, ...(input === undefined ? {} : { input }) });
  for (const uid of Object.values(UID)) await gpg(['--passphrase', '', '--quick-gen-key', uid, 'ed25519', 'sign', 'never']);
  const keyring = path.join(dir, 'archive-keyring.gpg');
  await writeFile(keyring, Buffer.from((await gpg(['--export', UID.archive])).stdout));
  return {
    keyring,
    clearsign: async (text, signers = ['archive']) => Buffer.from((await gpg([...signers.flatMap((s) => ['-u', UID[s]]), '--clearsign'], text)).stdout),
    detachSign: async (text, signers = ['archive']) => Buffer.from((await gpg([...signers.flatMap((s) => ['-u', UID[s]]), '--armor', '--detach-sign'], text)).stdout),
    close: async () => {
      await execa('gpgconf', ['--kill', 'gpg-agent'], { env, reject: false });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
