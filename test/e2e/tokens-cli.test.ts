import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { farmDbPath, openFarmDb } from '../../src/service/db/open-farm-db.js';
import { kfarm, tempDir } from '../helpers/kfarm-cli.js';

/** `kfarm tokens` through the real CLI, on a state dir of its own (no Docker, no Redis involved). */
describe('kfarm tokens', () => {
  const stateEnv = async () => ({ KFARM_STATE_DIR: await tempDir('tokens-state') });

  it('create prints the token once on stdout (the hint on stderr); list shows it without the token; revoke removes it', async () => {
    const env = await stateEnv();
    const file = farmDbPath(env.KFARM_STATE_DIR);
    const created = await kfarm(['tokens', 'create', 'ci-runner', '--scope', 'submit,read'], env);
    expect(created.exitCode, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^kfarm_[A-Za-z0-9_-]{43}\n?$/);
    const token = created.stdout.trim();
    expect(created.stderr).toMatch(/^kfarm: token t-[0-9a-f]{12} "ci-runner" \(read,submit\): it is shown only now, kfarm keeps only its hash/);
    expect(readFileSync(file).toString('latin1')).not.toContain(token.slice(6));

    const list = await kfarm(['tokens', 'list'], env);
    expect(list.exitCode, list.stderr).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+SCOPES\s+CREATED\s+LAST USED$/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^(t-[0-9a-f]{12})\s+ci-runner\s+read,submit\s+\d{4}-\d\d-\d\dT[\d:.]+Z\s+never$/);
    const id = /^t-[0-9a-f]{12}/.exec(lines[1] ?? '')?.[0] as string;
    expect(list.stdout).not.toContain(token);

    // a request with it (the service's check) shows as its last use
    const db = openFarmDb(file);
    expect(db.tokens.verify(token)).toMatchObject({ id, name: 'ci-runner', scopes: ['read', 'submit'] });
    db.close();
    const json = await kfarm(['tokens', 'list', '--json'], env);
    expect(json.exitCode, json.stderr).toBe(0);
    const rows = JSON.parse(json.stdout) as Record<string, unknown>[];
    expect(rows).toEqual([{ id, name: 'ci-runner', scopes: ['read', 'submit'], createdAt: expect.any(String), lastUsedAt: expect.any(String) }]);
    expect(json.stdout).not.toContain(token);

    const revoked = await kfarm(['tokens', 'revoke', id], env);
    expect(revoked.exitCode, revoked.stderr).toBe(0);
    expect(revoked.stdout.trim()).toBe(`revoked ${id} "ci-runner"`);
    const after = openFarmDb(file);
    expect(after.tokens.verify(token)).toBeUndefined();
    after.close();
    expect((await kfarm(['tokens', 'list', '--json'], env)).stdout.trim()).toBe('[]');

    const again = await kfarm(['tokens', 'revoke', id], env);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toContain(`no token ${id}`);
  });

  it('refuses unknown or missing scopes (exit 2) before making any database', async () => {
    const env = await stateEnv();
    const bad = await kfarm(['tokens', 'create', 'x', '--scope', 'read,root'], env);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('token scopes: unknown "root"');
    expect(bad.stderr).toContain('Give one or more of read, submit, admin');
    expect(bad.stdout).toBe('');
    const none = await kfarm(['tokens', 'create', 'x'], env);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toMatch(/--scope <list>' not specified/);
    expect(existsSync(farmDbPath(env.KFARM_STATE_DIR))).toBe(false);
  });

  it('a damaged database is exit 3 naming the file and what to do; one from a newer kfarm asks for an upgrade', async () => {
    const env = await stateEnv();
    const file = farmDbPath(env.KFARM_STATE_DIR);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, 'garbage '.repeat(1000));
    const corrupt = await kfarm(['tokens', 'list'], env);
    expect(corrupt.exitCode).toBe(3);
    expect(corrupt.stderr).toContain(`the farm's state ${file} is damaged or not a kfarm database`);
    expect(corrupt.stderr).toContain('Restore it from a backup, or move it aside');
    expect(readFileSync(file, 'utf8')).toBe('garbage '.repeat(1000));

    const env2 = await stateEnv();
    const file2 = farmDbPath(env2.KFARM_STATE_DIR);
    expect((await kfarm(['tokens', 'list'], env2)).exitCode).toBe(0);
    const raw = new Database(file2);
    raw.pragma('user_version = 7');
    raw.close();
    const newer = await kfarm(['tokens', 'create', 'x', '--scope', 'read'], env2);
    expect(newer.exitCode).toBe(3);
    expect(newer.stderr).toContain(`${file2} has schema version 7, newer than this kfarm knows`);
    expect(newer.stderr).toContain('Upgrade kfarm');
  });
});
