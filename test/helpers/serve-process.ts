import { mkdirSync } from 'node:fs';
import { execa, type ResultPromise } from 'execa';
import { openFarmDb } from '../../src/service/db/open-farm-db.js';
import type { Scope } from '../../src/service/farm-db.js';
import { servicePaths } from '../../src/service/service-paths.js';
import { packageRoot } from '../../src/paths.js';
import { KFARM_BIN } from './kfarm-cli.js';

export interface ServeProcess {
  url: string;
  proc: ResultPromise;
  /** everything it wrote to stderr so far */
  output(): string;
  stop(): Promise<void>;
}

/** `kfarm serve --listen 0` as a real process; resolves once it says where it listens. */
export async function startServe(env: Record<string, string>, args: string[] = []): Promise<ServeProcess> {
  const proc = execa('node', [KFARM_BIN, 'serve', '--listen', '0', ...args], { env, reject: false, cwd: packageRoot, buffer: false });
  let text = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kfarm serve did not start within 60 s:\n${text}`)), 60_000);
    proc.stderr?.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const m = /listening on (\S+?)[;\s]/.exec(text);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    void proc.then((r) => {
      clearTimeout(timer);
      reject(new Error(`kfarm serve exited (${String(r.exitCode)}) before listening:\n${text}`));
    });
  });
  return {
    url,
    proc,
    output: () => text,
    stop: async () => {
      proc.kill('SIGTERM');
      await proc;
    },
  };
}

/** A token made straight in the service's database (what `kfarm tokens create` does). */
export function makeToken(stateDir: string, name: string, scopes: Scope[]): string {
  mkdirSync(servicePaths(stateDir).root, { recursive: true });
  const db = openFarmDb(servicePaths(stateDir).db);
  try {
    return db.tokens.create(name, scopes).token;
  } finally {
    db.close();
  }
}

/** One request to a serve's API: status, the body as text and, when it is JSON, parsed. */
export async function apiCall(baseUrl: string, method: string, p: string, token: string | undefined, body?: Buffer | string, headers: Record<string, string> = {}) {
  const res = await fetch(`${baseUrl}${p}`, { method, headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers }, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}
