import type http from 'node:http';
import type { FarmDb, Scope, TokenRow } from '../farm-db.js';
import { HttpError } from './http-error.js';

/** What a scope allows: admin everything, submit also reads, read only reads. */
const IMPLIED: Record<Scope, readonly Scope[]> = { read: ['read'], submit: ['read', 'submit'], admin: ['read', 'submit', 'admin'] };

export function allows(token: Pick<TokenRow, 'scopes'>, needed: Scope): boolean {
  return token.scopes.some((s) => IMPLIED[s].includes(needed));
}

/** the token a request carries: `Authorization: Bearer <token>`, else the dashboard's cookie */
export function presentedToken(req: http.IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth) return /^Bearer ([A-Za-z0-9_-]{1,200})$/.exec(auth)?.[1] ?? '';
  const cookie = req.headers.cookie;
  return cookie ? /(?:^|;\s*)kfarm_token=([A-Za-z0-9_-]{1,200})/.exec(cookie)?.[1] : undefined;
}

/** The caller's token, checked for `needed`: 401 without a valid one, 403 when its scopes fall short (nothing done either way). */
export function authorize(db: FarmDb, req: http.IncomingMessage, needed: Scope): TokenRow {
  const text = presentedToken(req);
  if (text === undefined)
    throw new HttpError(401, 'a token is needed: send Authorization: Bearer <token>', 'Create one on the farm host: kfarm tokens create <name> --scope read,submit');
  const token = text ? db.tokens.verify(text) : undefined;
  if (!token) throw new HttpError(401, 'the token is not valid (unknown or revoked)', 'Ask the farm admin for a token: kfarm tokens create <name> --scope ...');
  if (!allows(token, needed)) throw new HttpError(403, `the token "${token.name}" has scopes ${token.scopes.join(',')}; this needs ${needed}`);
  return token;
}
