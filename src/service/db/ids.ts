import { createHash, randomBytes } from 'node:crypto';

/** b-<yyyymmddHHMMss UTC>-<6 hex>: ids sort by creation (to the second), the random tail keeps a second's builds apart. */
export function newBuildId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `b-${stamp}-${randomBytes(3).toString('hex')}`;
}

/** A short public handle of a token (what `kfarm tokens list` shows and `revoke` takes); not a secret. */
export function newTokenId(): string {
  return `t-${randomBytes(6).toString('hex')}`;
}

/** kfarm_ and 32 random bytes in base64url (43 characters): a prefix secret scanners can match, 256 bits of secret. */
export function newTokenText(): string {
  return `kfarm_${randomBytes(32).toString('base64url')}`;
}

const TOKEN_TEXT = /^kfarm_[A-Za-z0-9_-]{43}$/;

export const looksLikeToken = (text: string): boolean => TOKEN_TEXT.test(text);

/** What the tokens table keeps instead of the token: its sha256, hex. */
export function tokenHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
