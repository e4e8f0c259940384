import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractTar } from '../../src/executor/archive.js';
import type { BuildReport } from '../../src/report/report.js';
import { debian12Kernels, example, isolatedEnv, KFARM_BIN, tempDir } from '../helpers/kfarm-cli.js';
import { moduleEntry } from '../helpers/module-files.js';
import { makeSigningKey } from '../helpers/signing-key.js';
import { apiCall, makeToken, startServe, type ServeProcess } from '../helpers/serve-process.js';

/**
 * kfarm serve signs as each module's settings say (issue 23: "sign, verify the load, pack and
 * publish as each module's settings say"): a farm started with --sign-key/--sign-cert signs the
 * builds of a module registered with sign=true with that key, as kfarm build --sign-key does,
 * and leaves the others unsigned; a farm without a key refuses sign=true when the module is
 * registered, and an unreadable key stops serve at start.
 */
const { k61 } = await debian12Kernels();

let dir: string;
let key = '';
let cert = '';
let signed: ServeProcess;
let keyless: ServeProcess;
let tokens: { signed: string; keyless: string };

async function tarGz(source: string): Promise<Buffer> {
  const { stdout } = await execa('tar', ['-C', source, '-czf', '-', '.'], { encoding: 'buffer' });
  return Buffer.from(stdout);
}

/** builds the registered hello on k61 and waits for its end; the built module's signer (empty: unsigned) and the report */
async function buildAndRead(serve: ServeProcess, token: string): Promise<{ signer: string; report: BuildReport & { signing?: { subject?: string } } }> {
  const sub = await apiCall(serve.url, 'POST', '/api/v1/builds', token, JSON.stringify({ module: 'hello', kernels: k61 }));
  expect(sub.status, sub.text).toBe(202);
  const id = (sub.json as { id: string }).id;
  const events = await apiCall(serve.url, 'GET', `/api/v1/builds/${id}/events`, token);
  const end = JSON.parse(/event: end\ndata: (.*)$/m.exec(events.text)?.[1] ?? '{}') as { state?: string; exitCode?: number; error?: string };
  expect(end, events.text.slice(-2000)).toMatchObject({ state: 'done', exitCode: 0 });
  const report = (await apiCall(serve.url, 'GET', `/api/v1/builds/${id}/report`, token)).json as BuildReport & { signing?: { subject?: string } };
  const tarball = report.kernels[0]?.tarball?.path ?? 'missing';
  const res = await fetch(`${serve.url}/api/v1/builds/${id}/artifacts/${tarball}`, { headers: { Authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  const entries = await extractTar(gunzipSync(Buffer.from(await res.arrayBuffer())), { maxBytes: 1 << 28, maxEntries: 10_000, allowSymlinks: true }, tarball);
  const module = moduleEntry(entries, k61, 'x86_64', 'hello');
  if (!module?.data) throw new Error(`no hello module in ${tarball}`);
  const file = path.join(dir, `${id}-${path.basename(module.path)}`);
  await writeFile(file, module.data);
  return { signer: (await execa('modinfo', ['-F', 'signer', file])).stdout.trim(), report };
}

beforeAll(async () => {
  dir = await tempDir('serve-signing');
  ({ key, cert } = await makeSigningKey(dir, 'farm', 'kfarm farm key'));
  const signedEnv = await isolatedEnv('serve-signing');
  const keylessEnv = await isolatedEnv('serve-keyless');
  tokens = { signed: makeToken(signedEnv.KFARM_STATE_DIR as string, 'ci', ['submit', 'read']), keyless: makeToken(keylessEnv.KFARM_STATE_DIR as string, 'ci', ['submit', 'read']) };
  signed = await startServe(signedEnv, ['--sign-key', key, '--sign-cert', cert]);
  keyless = await startServe(keylessEnv);
}, 120_000);

afterAll(async () => {
  await signed?.stop();
  await keyless?.stop();
});

describe('kfarm serve: signing as the module says', () => {
  it("a module registered with sign=true is built signed with the farm's key, its report naming the certificate", async () => {
    const put = await apiCall(signed.url, 'PUT', '/api/v1/modules/hello?sign=true', tokens.signed, await tarGz(example('hello')), { 'Content-Type': 'application/gzip' });
    expect(put.status, put.text).toBe(201);
    expect(put.json).toMatchObject({ name: 'hello', settings: { sign: true } });
    const { signer, report } = await buildAndRead(signed, tokens.signed);
    expect(signer).toBe('kfarm farm key');
    expect(report.signing?.subject).toContain('kfarm farm key');
  }, 600_000);

  it('the same module registered again without sign=true is built unsigned on the same farm', async () => {
    const put = await apiCall(signed.url, 'PUT', '/api/v1/modules/hello', tokens.signed, await tarGz(example('hello')), { 'Content-Type': 'application/gzip' });
    expect(put.status, put.text).toBe(200);
    expect((put.json as { settings: { sign?: boolean } }).settings.sign).toBeUndefined();
    const { signer, report } = await buildAndRead(signed, tokens.signed);
    expect(signer).toBe('');
    expect(report.signing).toBeUndefined();
  }, 600_000);

  it('a farm without a key refuses sign=true at registration (400, nothing registered); sign=maybe is refused too', async () => {
    const put = await apiCall(keyless.url, 'PUT', '/api/v1/modules/hello?sign=true', tokens.keyless, await tarGz(example('hello')), { 'Content-Type': 'application/gzip' });
    expect(put.status).toBe(400);
    expect(put.text).toContain('this farm has no signing key');
    expect(put.text).toContain('--sign-key and --sign-cert');
    expect((await apiCall(keyless.url, 'GET', '/api/v1/modules', tokens.keyless)).json).toEqual([]);
    const maybe = await apiCall(signed.url, 'PUT', '/api/v1/modules/hello?sign=maybe', tokens.signed, await tarGz(example('hello')), { 'Content-Type': 'application/gzip' });
    expect(maybe.status).toBe(400);
  }, 120_000);

  it('serve with a key file it cannot read, or a key without its certificate, stops at start with exit 2', async () => {
    const env = await isolatedEnv('serve-badkey');
    const missing = await execa('node', [KFARM_BIN, 'serve', '--listen', '0', '--sign-key', path.join(dir, 'nope.pem'), '--sign-cert', cert], {
      env,
      reject: false,
      timeout: 60_000,
    });
    expect(missing.exitCode, missing.stderr).toBe(2);
    expect(missing.stderr).toContain('--sign-key');
    expect(missing.stderr).toContain('cannot be read');
    const half = await execa('node', [KFARM_BIN, 'serve', '--listen', '0', '--sign-key', key], { env, reject: false, timeout: 60_000 });
    expect(half.exitCode, half.stderr).toBe(2);
    expect(half.stderr).toContain('--sign-key given without --sign-cert');
  }, 120_000);
});
