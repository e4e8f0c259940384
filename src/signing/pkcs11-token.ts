import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { KfarmError, describeError } from '../errors/kfarm-error.js';
import { openssl } from './openssl.js';
import { parsePkcs11Uri, redact, type Pkcs11Uri } from './pkcs11-uri.js';
import { firstLine, loadCertificate } from './signing-key.js';

/**
 * A signing key that lives in a PKCS#11 token (`--sign-key pkcs11:...`). The key never
 * leaves it: this host's openssl signs through OpenSSL's pkcs11 engine (libp11, Debian's
 * libengine-pkcs11-openssl), the token doing the RSA operation. The PIN is held in memory and
 * reaches openssl and pkcs11-tool only through their environment (`-passin env:`,
 * `--pin env:`), never an argument; nothing here logs it.
 */
export interface TokenKey {
  kind: 'pkcs11';
  /** the URI as given, for messages (pin-value never passes parsePkcs11Uri) */
  uri: string;
  parsed: Pkcs11Uri;
  /** the PKCS#11 library (softhsm2, p11-kit-proxy, a vendor's) */
  modulePath: string;
  pin: string;
  certPem: Buffer;
  subject: string;
  serial: string;
}

export const PIN_ENV = 'KFARM_PKCS11_PIN';
export const PIN_FILE_ENV = 'KFARM_PKCS11_PIN_FILE';
export const MODULE_ENV = 'KFARM_PKCS11_MODULE';

const bad = (uri: string, message: string, hint: string) => new KfarmError('BAD_OPTION', `--sign-key ${redact(uri)}: ${message}`, { context: { 'sign-key': redact(uri) }, hint });

/** The PIN: the URI's pin-source file, else KFARM_PKCS11_PIN, else the file KFARM_PKCS11_PIN_FILE names. */
async function readPin(parsed: Pkcs11Uri, env: NodeJS.ProcessEnv): Promise<string> {
  const file = parsed.pinSource ?? (env[PIN_ENV] === undefined ? env[PIN_FILE_ENV] : undefined);
  if (file !== undefined) {
    try {
      return (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      throw bad(parsed.uri, `cannot read the PIN file ${file}: ${describeError(err)}`, 'Give a readable file holding the token PIN.');
    }
  }
  const pin = env[PIN_ENV];
  if (pin === undefined || pin === '') {
    throw bad(
      parsed.uri,
      'no PIN for the token',
      `Set ${PIN_ENV} to the user PIN, or ${PIN_FILE_ENV} to a file holding it, or add ?pin-source=file:/path to the URI (never on the command line).`,
    );
  }
  return pin;
}

/** where Debian's openssl keeps its engines, and the multiarch lib dir beside it */
async function enginePaths(): Promise<{ engine: string; libDir: string }> {
  const r = await openssl(['version', '-e']);
  const dir = /ENGINESDIR: "([^"]+)"/.exec(r.stdout.toString('utf8'))?.[1] ?? '/usr/lib/x86_64-linux-gnu/engines-3';
  return { engine: path.join(dir, 'pkcs11.so'), libDir: path.dirname(dir) };
}

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

/**
 * An openssl config that loads the pkcs11 engine with this key's library, in a private temp
 * dir (it holds no secret), for the lifetime of `use`.
 */
export async function withTokenOpenssl<T>(key: Pick<TokenKey, 'modulePath' | 'pin'>, use: (env: Record<string, string>) => Promise<T>): Promise<T> {
  const { engine } = await enginePaths();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kfarm-pkcs11-'));
  try {
    const conf = path.join(dir, 'openssl.cnf');
    await writeFile(
      conf,
      [
        'openssl_conf = kfarm_conf',
        '[kfarm_conf]',
        'engines = kfarm_engines',
        '[kfarm_engines]',
        'pkcs11 = kfarm_pkcs11',
        '[kfarm_pkcs11]',
        'engine_id = pkcs11',
        `dynamic_path = ${engine}`,
        `MODULE_PATH = ${key.modulePath}`,
        'init = 0',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    return await use({ OPENSSL_CONF: conf, [PIN_ENV]: key.pin });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** the openssl arguments that name the token's key (with the env of withTokenOpenssl) */
export const tokenKeyArgs = (key: Pick<TokenKey, 'parsed'>, keyOption: '-inkey' | '-in' | '-key'): string[] => [
  '-engine',
  'pkcs11',
  keyOption === '-in' ? '-inform' : '-keyform',
  'engine',
  keyOption,
  key.parsed.engineUri,
  '-passin',
  `env:${PIN_ENV}`,
];

interface TokenObject {
  label?: string;
  id?: string;
}

/** pkcs11-tool's `--list-objects --type privkey` output, one entry per private key */
export function parsePrivateKeys(text: string): TokenObject[] {
  const keys: TokenObject[] = [];
  let current: TokenObject | undefined;
  for (const line of text.split('\n')) {
    if (/^\S/.test(line)) {
      current = /^Private Key Object/.test(line) ? {} : undefined;
      if (current) keys.push(current);
      continue;
    }
    const m = /^\s+(label|ID):\s*(.*)$/.exec(line);
    if (current && m) {
      if (m[1] === 'label') current.label = m[2]?.trim() ?? '';
      else current.id = (m[2] ?? '').trim().toLowerCase();
    }
  }
  return keys;
}

/**
 * Before any build (as loadSigningKey for a file): the URI parses, the PIN is there and opens
 * the token, exactly one private key matches, and --sign-cert's public key is that key's.
 * Everything else is a BAD_OPTION (exit 2) naming the URI.
 */
export async function loadTokenKey(uri: string, certPath: string, env: NodeJS.ProcessEnv = process.env): Promise<TokenKey> {
  const parsed = parsePkcs11Uri(uri);
  const pin = await readPin(parsed, env);
  const { libDir } = await enginePaths();
  const modulePath = env[MODULE_ENV] ?? parsed.modulePath ?? path.join(libDir, 'p11-kit-proxy.so');
  if (!(await exists(modulePath))) {
    throw bad(
      uri,
      `the PKCS#11 library ${modulePath} is not there`,
      `Set ${MODULE_ENV} to your token's PKCS#11 library (SoftHSM2: /usr/lib/<arch>/softhsm/libsofthsm2.so), or install p11-kit.`,
    );
  }
  const { engine } = await enginePaths();
  if (!(await exists(engine))) {
    throw bad(uri, `OpenSSL's pkcs11 engine ${engine} is not installed`, 'Install it: `apt-get install libengine-pkcs11-openssl` (and opensc for pkcs11-tool).');
  }

  const listed = await execa('pkcs11-tool', ['--module', modulePath, '--token-label', parsed.token, '--login', '--pin', `env:${PIN_ENV}`, '--list-objects', '--type', 'privkey'], {
    env: { [PIN_ENV]: pin },
    reject: false,
    timeout: 60_000,
    stdin: 'ignore',
  }).catch((err: unknown) => ({ exitCode: undefined, stdout: '', stderr: describeError(err) }));
  if (listed.exitCode === undefined) throw bad(uri, `pkcs11-tool could not run: ${listed.stderr}`, 'Install it: `apt-get install opensc`.');
  if (listed.exitCode !== 0) {
    const why = `${listed.stderr}\n${listed.stdout}`;
    const pinWrong = /CKR_PIN_INCORRECT|CKR_PIN_LEN_RANGE|CKR_PIN_LOCKED/.test(why);
    throw bad(
      uri,
      pinWrong ? `the token refused the PIN (${/CKR_PIN_\w+/.exec(why)?.[0]})` : `cannot open the token ${parsed.token}: ${firstLine(listed.stderr || listed.stdout)}`,
      pinWrong ? `Check ${PIN_ENV} (or the PIN file).` : `Check the token label (\`pkcs11-tool --module ${modulePath} --list-token-slots\`).`,
    );
  }
  const matching = parsePrivateKeys(listed.stdout).filter((k) => (parsed.object === undefined || k.label === parsed.object) && (parsed.id === undefined || k.id === parsed.id));
  if (matching.length !== 1) {
    throw bad(
      uri,
      matching.length === 0
        ? `no private key in the token ${parsed.token} matches`
        : `${matching.length} private keys in the token ${parsed.token} match (${matching.map((k) => `object=${k.label ?? '?'};id=${k.id ?? '?'}`).join(', ')})`,
      matching.length === 0 ? 'List the keys: `pkcs11-tool --list-objects --type privkey --login`.' : 'Name exactly one: add id=%xx (its CKA_ID) to the URI.',
    );
  }

  const cert = await loadCertificate(certPath);
  const key = { kind: 'pkcs11' as const, uri: redact(uri), parsed, modulePath, pin, ...cert };
  const [certPub, keyPub] = await Promise.all([
    openssl(['x509', '-noout', '-pubkey'], { input: cert.certPem }),
    withTokenOpenssl(key, (e) => openssl(['pkey', '-pubout', ...tokenKeyArgs(key, '-in')], { env: e })),
  ]);
  if (keyPub.exitCode !== 0)
    throw bad(uri, `openssl cannot use the key through the pkcs11 engine: ${firstLine(keyPub.stderr.replace(/^Engine "pkcs11" set\.\n?/, ''))}`, 'Check the PIN and the URI.');
  if (certPub.exitCode !== 0 || !certPub.stdout.equals(keyPub.stdout)) {
    throw bad(uri, `the certificate ${certPath} does not match the token's key: their public keys differ`, "Give --sign-cert the certificate made from the token's key.");
  }
  return key;
}
