import { env } from '../../config/env.js';
import { usableStateDir } from '../../config/state-dir.js';
import { KfarmError } from '../../errors/kfarm-error.js';
import { rootLogger } from '../../logging/logger.js';
import { farmDbPath, openFarmDb } from '../../service/db/open-farm-db.js';
import { validScopes } from '../../service/db/tokens-table.js';
import type { FarmDb } from '../../service/farm-db.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../exit-codes.js';

// `kfarm tokens create|list|revoke` (options: commands/tokens.ts)

async function withDb<T>(fn: (db: FarmDb) => T): Promise<T> {
  const db = openFarmDb(farmDbPath(await usableStateDir(env.stateDir)), rootLogger);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

export async function tokensCreateAction(ctx: CliContext, name: string, opts: { scope: string }): Promise<void> {
  // checked before the database is opened (or made): a typo makes no file
  const scopes = validScopes(
    opts.scope
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  );
  const { token, row } = await withDb((db) => db.tokens.create(name, scopes));
  ctx.out(token);
  ctx.progress(`kfarm: token ${row.id} "${row.name}" (${row.scopes.join(',')}): it is shown only now, kfarm keeps only its hash. Store it where the client reads it.`);
  ctx.setExitCode(EXIT.ok);
}

export async function tokensListAction(ctx: CliContext, opts: { json?: boolean }): Promise<void> {
  const rows = await withDb((db) => db.tokens.list());
  if (opts.json) ctx.out(JSON.stringify(rows, null, 2));
  else {
    const table = [['ID', 'NAME', 'SCOPES', 'CREATED', 'LAST USED'], ...rows.map((r) => [r.id, r.name, r.scopes.join(','), r.createdAt, r.lastUsedAt ?? 'never'])];
    const widths = table[0]!.map((_, i) => Math.max(...table.map((cells) => cells[i]!.length)));
    for (const cells of table) ctx.out(cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
  }
  ctx.setExitCode(EXIT.ok);
}

export async function tokensRevokeAction(ctx: CliContext, id: string): Promise<void> {
  const revoked = await withDb((db) => {
    const row = db.tokens.list().find((r) => r.id === id);
    return row && db.tokens.revoke(id) ? row : undefined;
  });
  if (!revoked) throw new KfarmError('BAD_OPTION', `no token ${id}`, { context: { token: id }, hint: 'See the ids with `kfarm tokens list`.' });
  ctx.out(`revoked ${revoked.id} "${revoked.name}"`);
  ctx.setExitCode(EXIT.ok);
}
