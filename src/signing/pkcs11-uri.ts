import { KfarmError } from '../errors/kfarm-error.js';

/**
 * A PKCS#11 URI (RFC 7512) as `--sign-key` takes it, e.g.
 * `pkcs11:token=kfarm;object=modsign;type=private?pin-source=file:/run/pin`. Pure.
 * kfarm reads the path attributes a key is found by (token, object, id, type) and, from the
 * query, pin-source (a file) and module-path (the PKCS#11 library). `pin-value` is refused:
 * a PIN in an argument is on the command line, which `ps` and shell histories show.
 */
export interface Pkcs11Uri {
  /** as given (without any pin-source or module-path: those are kfarm's, not the engine's) */
  uri: string;
  token: string;
  /** CKA_LABEL of the key, decoded */
  object?: string | undefined;
  /** CKA_ID of the key, as lower-case hex */
  id?: string | undefined;
  pinSource?: string | undefined;
  modulePath?: string | undefined;
  /** what the OpenSSL engine is given: the path attributes, type=private */
  engineUri: string;
}

const PATH_ATTRS = new Set([
  'token',
  'object',
  'id',
  'type',
  'manufacturer',
  'model',
  'serial',
  'library-manufacturer',
  'library-description',
  'library-version',
  'slot-id',
  'slot-description',
  'slot-manufacturer',
]);

export const isPkcs11Uri = (s: string): boolean => s.startsWith('pkcs11:');

const bad = (uri: string, message: string, hint: string) => new KfarmError('BAD_OPTION', `--sign-key ${redact(uri)}: ${message}`, { context: { 'sign-key': redact(uri) }, hint });

/** the URI with any pin-value blanked, for messages */
export const redact = (uri: string): string => uri.replace(/(pin-value=)[^&;]*/gi, '$1…');

/** %XX decoded to bytes (an id is binary, not UTF-8) */
function decodeBytes(uri: string, value: string): Buffer {
  if (/%(?![0-9A-Fa-f]{2})/.test(value)) throw bad(uri, `${value} is not validly percent-encoded`, 'Encode reserved characters as %XX (RFC 7512).');
  const out: number[] = [];
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '%') {
      out.push(parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(...Buffer.from(value[i] ?? '', 'utf8'));
  }
  return Buffer.from(out);
}
const decode = (uri: string, value: string): string => decodeBytes(uri, value).toString('utf8');

export function parsePkcs11Uri(uri: string): Pkcs11Uri {
  if (!isPkcs11Uri(uri)) throw bad(uri, 'not a pkcs11: URI', 'Give a key file, or a PKCS#11 URI such as pkcs11:token=<label>;object=<key label>.');
  const rest = uri.slice('pkcs11:'.length);
  const q = rest.indexOf('?');
  const pathPart = q < 0 ? rest : rest.slice(0, q);
  const queryPart = q < 0 ? '' : rest.slice(q + 1);
  const attrs = new Map<string, string>();
  const rawPath: string[] = [];
  for (const piece of pathPart.split(';').filter((p) => p !== '')) {
    const eq = piece.indexOf('=');
    const name = eq < 0 ? piece : piece.slice(0, eq);
    if (eq < 0 || !PATH_ATTRS.has(name))
      throw bad(uri, `${JSON.stringify(piece)} is not a PKCS#11 URI path attribute`, 'RFC 7512 path attributes: token, object, id, type, serial, …');
    if (attrs.has(name)) throw bad(uri, `${name} is given twice`, 'Give each attribute once.');
    attrs.set(name, decode(uri, piece.slice(eq + 1)));
    if (name !== 'type') rawPath.push(piece);
  }
  let pinSource: string | undefined;
  let modulePath: string | undefined;
  for (const piece of queryPart.split('&').filter((p) => p !== '')) {
    const eq = piece.indexOf('=');
    const name = eq < 0 ? piece : piece.slice(0, eq);
    const value = decode(uri, eq < 0 ? '' : piece.slice(eq + 1));
    if (name === 'pin-value') {
      throw bad(
        uri,
        'carries its PIN (pin-value), which would be on the command line',
        'Put the PIN in KFARM_PKCS11_PIN, in a file named by KFARM_PKCS11_PIN_FILE, or in a file named by the URI (?pin-source=file:/path).',
      );
    } else if (name === 'pin-source') {
      pinSource = value.startsWith('file:') ? value.slice('file:'.length) : value;
    } else if (name === 'module-path') {
      modulePath = value;
    } else {
      throw bad(uri, `the query attribute ${name} is not one kfarm reads`, 'kfarm reads pin-source and module-path.');
    }
  }
  const token = attrs.get('token');
  // kfarm counts the matching keys itself (pkcs11-tool, one token at a time): the token must be named
  if (!token) throw bad(uri, 'names no token', 'Add token=<the token label> (`pkcs11-tool --list-token-slots` shows it).');
  const type = attrs.get('type');
  if (type !== undefined && type !== 'private') throw bad(uri, `type=${type} is not a private key`, 'Name the private key: type=private (or leave type out).');
  const object = attrs.get('object');
  const idRaw = /(?:^|;)id=([^;]*)/.exec(pathPart)?.[1];
  const id = idRaw === undefined ? undefined : decodeBytes(uri, idRaw).toString('hex');
  if (object === undefined && id === undefined)
    throw bad(uri, 'names no key (object= or id=)', 'Add object=<key label> or id=<key id> (`pkcs11-tool --list-objects --type privkey --login`).');
  const engineUri = `pkcs11:${[...rawPath, 'type=private'].join(';')}`;
  return { uri: q < 0 ? uri : `pkcs11:${pathPart}`, token, object, id, pinSource, modulePath, engineUri };
}
