import type { Database } from 'better-sqlite3';
import { KfarmError } from '../../errors/kfarm-error.js';
import type { Logger } from '../../logging/logger.js';
import { SCOPES, type FarmDb, type Scope, type TokenRow } from '../farm-db.js';
import { looksLikeToken, newTokenId, newTokenText, tokenHash } from './ids.js';
import type { Guard } from './sqlite-failure.js';

interface TokenRecord {
  id: string;
  name: string;
  scopes: string;
  created_at: string;
  last_used_at: string | null;
}

/** lastUsedAt is written at most this often per token: a busy client does not make every request a write. */
const LAST_USED_EVERY_MS = 60_000;
const NAME_MAX = 100;

export function validScopes(scopes: readonly string[]): Scope[] {
  const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (scopes.length === 0 || unknown.length > 0)
    throw new KfarmError('BAD_OPTION', `token scopes: ${scopes.length === 0 ? 'none given' : `unknown ${unknown.map((s) => JSON.stringify(s)).join(', ')}`}`, {
      hint: `Give one or more of ${SCOPES.join(', ')} (e.g. --scope read,submit).`,
    });
  return SCOPES.filter((s) => scopes.includes(s));
}

function validName(name: string): string {
  // eslint-disable-next-line no-control-regex
  if (name.trim() === '' || name.length > NAME_MAX || /[\u0000-\u001f\u007f]/.test(name))
    throw new KfarmError('BAD_OPTION', `token name ${JSON.stringify(name)}: give 1 to ${NAME_MAX} printable characters`, {
      hint: 'Name the client the token is for, e.g. ci-runner.',
    });
  return name;
}

const toRow = (r: TokenRecord): TokenRow => ({
  id: r.id,
  name: r.name,
  scopes: JSON.parse(r.scopes) as Scope[],
  createdAt: r.created_at,
  ...(r.last_used_at === null ? {} : { lastUsedAt: r.last_used_at }),
});

export function tokensTable(db: Database, guard: Guard, logger: Logger | undefined): FarmDb['tokens'] {
  const insert = db.prepare('INSERT INTO tokens (id, name, scopes, hash, created_at) VALUES (?, ?, ?, ?, ?)');
  const byHash = db.prepare<[string], TokenRecord>('SELECT id, name, scopes, created_at, last_used_at FROM tokens WHERE hash = ?');
  const all = db.prepare<[], TokenRecord>('SELECT id, name, scopes, created_at, last_used_at FROM tokens ORDER BY created_at, id');
  const touch = db.prepare('UPDATE tokens SET last_used_at = ? WHERE id = ?');
  const remove = db.prepare('DELETE FROM tokens WHERE id = ?');
  return {
    create(name, scopes) {
      const row: TokenRow = { id: newTokenId(), name: validName(name), scopes: validScopes(scopes), createdAt: new Date().toISOString() };
      const token = newTokenText();
      guard('creating a token', () => insert.run(row.id, row.name, JSON.stringify(row.scopes), tokenHash(token), row.createdAt));
      return { token, row };
    },
    verify(token) {
      if (!looksLikeToken(token)) return undefined;
      // Looked up by an index on sha256(token), not compared with the stored tokens: the time the
      // lookup takes depends on the hash, which says nothing usable about the token (finding a
      // token whose hash starts like a stored one is a preimage search on a 256-bit secret), so
      // this is as safe against timing as a constant-time comparison, and needs no scan.
      const found = guard('checking a token', () => byHash.get(tokenHash(token)));
      if (!found) return undefined;
      const now = new Date();
      if (found.last_used_at === null || now.getTime() - Date.parse(found.last_used_at) >= LAST_USED_EVERY_MS) {
        try {
          guard('recording a token use', () => touch.run(now.toISOString(), found.id));
          found.last_used_at = now.toISOString();
        } catch (err) {
          // the token is valid: a full disk makes its last use stale, not the request refused
          logger?.warn({ err, token: found.id }, 'could not record the token last use');
        }
      }
      return toRow(found);
    },
    list: () => guard('listing tokens', () => all.all().map(toRow)),
    revoke: (id) => guard('revoking a token', () => remove.run(id).changes > 0),
  };
}
