import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { LABEL_ARCHIVE } from '../../src/images/archive-recipe.js';
import { listKfarmImages } from '../../src/images/catalog.js';
import { compareKernels } from '../../src/matrix/kernel-target.js';
import { LABEL_HOST, LABEL_PID } from '../../src/worker/build-worker.js';
import { execa } from 'execa';
import { example, isolatedEnv, tempDir } from '../helpers/kfarm-cli.js';
import { repoTestKeys, type RepoTestKeys } from '../helpers/repo-test-key.js';
import { makeToken, startServe, type ServeProcess } from '../helpers/serve-process.js';
import { debianKernels, startTestMirror, type TestMirror } from '../helpers/test-mirror.js';

/**
 * Issue 23's "done when": kfarm serve --watch, one registered module, a signed Debian mirror on
 * 127.0.0.1. The first look is the baseline; a kernel added to the mirror mid-run is then
 * synced, hello is built for it and published to the farm's APT repository, with no command.
 * The figure printed is the time from the kernel appearing to its package being published.
 */
const runtime = new DockerRuntime();
let mirror: TestMirror;
let serve: ServeProcess | undefined;
let keys: RepoTestKeys;
let FIRST = '';
let SECOND = '';

async function removeTestImages(): Promise<void> {
  for (const image of await runtime.listImages(LABEL_ARCHIVE)) {
    if (!(image.labels[LABEL_ARCHIVE] ?? '').startsWith('http://127.0.0.1:')) continue;
    const tags = image.tags.filter((t) => t.startsWith('kfarm/debian-12:'));
    if (tags.length > 0) await runtime.removeImages(tags);
  }
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${Math.round(timeoutMs / 1000)} s\n${serve?.output().slice(-3000) ?? ''}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

beforeAll(async () => {
  await removeTestImages();
  keys = await repoTestKeys();
  const env = await isolatedEnv('serve-watch');
  const held = new Set((await listKfarmImages(runtime)).filter((i) => i.name === 'debian-12').flatMap((i) => i.kernels));
  const generic = (await debianKernels({ release: 'debian-12', arch: 'amd64' })).filter((k) => k.flavour === 'amd64' && k.abi.startsWith('6.1.0-'));
  const oldest = generic.map((k) => k.kernel).sort(compareKernels)[0];
  const reserved = new Set([...(env.KFARM_KERNELS ?? '').split(','), oldest]);
  const free = generic.filter((k) => !held.has(k.kernel) && !reserved.has(k.kernel)).sort((a, b) => compareKernels(b.kernel, a.kernel));
  FIRST = free[0]?.kernel ?? '';
  SECOND = free.find((k) => k.kernel !== FIRST)?.kernel ?? '';
  if (!FIRST || !SECOND) throw new Error(`Debian offers no two generic 6.1 kernels this engine lacks: ${free.map((k) => k.kernel).join(' ')}`);
  mirror = await startTestMirror({ release: 'debian-12', arch: 'amd64', kernels: [FIRST] });
}, 600_000);

afterAll(async () => {
  await serve?.stop();
  await removeTestImages();
  await mirror?.close();
  await keys?.close();
});

describe('kfarm serve --watch against a Debian mirror on this machine', () => {
  it('builds and publishes a registered module for a kernel that appears in the archive, with no command', async () => {
    const env = await isolatedEnv('serve-watch');
    const state = env.KFARM_STATE_DIR as string;
    const token = makeToken(state, 'ci', ['submit']);
    const apt = path.join(await tempDir('watch-apt'), 'apt');
    // the webhook: every event the farm sends, signed (the signature is tested in webhook-notifier.test.ts)
    const events: Array<{ type: string; kernel?: string }> = [];
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        events.push(JSON.parse(body) as { type: string; kernel?: string });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const secret = path.join(state, 'webhook.secret');
    await execa('sh', ['-c', `head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > ${secret}`]);
    const args = [
      '--watch',
      '--watch-every',
      '10s',
      '--releases',
      'debian-12',
      '--arch',
      'amd64',
      '--flavours',
      'amd64',
      '--mirror',
      mirror.url,
      '--security-mirror',
      mirror.securityUrl,
      '--keyring',
      mirror.keyringFile,
      '--apt',
      apt,
      '--repo-key',
      keys.plain,
      '--webhook',
      `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
      '--webhook-secret-file',
      secret,
    ];
    serve = await startServe(env, args);
    const get = async (p: string) => (await fetch(`${serve!.url}${p}`, { headers: { Authorization: `Bearer ${token}` } })).json();
    const source = Buffer.from((await execa('tar', ['-C', example('hello'), '-czf', '-', '.'], { encoding: 'buffer' })).stdout);
    const put = await fetch(`${serve.url}/api/v1/modules/hello?formats=bmdeb`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/gzip' },
      body: source,
    });
    expect(put.status).toBe(201);

    // the first look: the baseline (FIRST is recorded, not built)
    await until('the baseline look', 120_000, async () => ((await get('/api/v1/archive/kernels')) as Array<{ kernel: string }>).some((k) => k.kernel === FIRST) || undefined);
    await mirror.addKernel(SECOND);
    const appeared = Date.now();
    // killed mid-sync (apt in the image build has fetched the new headers), then started again:
    // the next run plans the same sync and build from the database, and nothing is lost
    await until(`the sync of ${SECOND} under way`, 300_000, async () =>
      Promise.resolve(mirror.requests.some((r) => r.method === 'GET' && r.path.includes(`/linux-headers-${SECOND}_`)) || undefined),
    );
    const deadPid = String(serve.proc.pid);
    serve.proc.kill('SIGKILL');
    await serve.proc;
    serve = await startServe(env, args);
    const packages = path.join(apt, 'dists', 'bookworm', 'main', 'binary-amd64', 'Packages');
    await until(
      `hello-modules-${SECOND} in the APT repository`,
      900_000,
      async () => (await readFile(packages, 'utf8').catch(() => '')).includes(`Package: hello-modules-${SECOND}\n`) || undefined,
    );
    const seconds = Math.round((Date.now() - appeared) / 1000);
    console.log(`[serve-watch] ${SECOND}: from appearing in the archive to hello published in ${seconds} s`);
    const builds = (await get('/api/v1/builds')) as Array<{ trigger: string; kernels: string; state: string; module?: string }>;
    expect(builds.filter((b) => b.trigger === 'watch').map((b) => [b.module, b.kernels, b.state])).toEqual([['hello', SECOND, 'done']]);
    // nothing was built for the baseline kernel
    expect((await readFile(packages, 'utf8')).includes(`hello-modules-${FIRST}`)).toBe(false);
    await until('the kernel-built webhook', 60_000, async () => Promise.resolve(events.find((e) => e.type === 'kernel-built' && e.kernel === SECOND)));
    expect(events.filter((e) => e.type === 'kernel-built' && e.kernel === SECOND)).toHaveLength(1);
    // no container of the killed service is left
    const left = (await runtime.listContainers({ [LABEL_HOST]: os.hostname() })).filter((c) => c.labels[LABEL_PID] === deadPid);
    expect(left).toEqual([]);

    // the archive's signature goes bad: the run asked for fails loudly (a farm-fault event), the farm keeps serving
    await mirror.signWith('stranger');
    const admin = makeToken(state, 'ops', ['admin']);
    const sync = await fetch(`${serve.url}/api/v1/sync`, { method: 'POST', headers: { Authorization: `Bearer ${admin}` } });
    expect(sync.status).toBe(202);
    const fault = await until('the farm-fault webhook', 120_000, async () => Promise.resolve(events.find((e) => e.type === 'farm-fault')));
    expect(JSON.stringify(fault)).toMatch(/no valid signature/);
    expect(((await get('/api/v1/builds')) as unknown[]).length).toBeGreaterThan(0);
    receiver.close();

    // SECOND leaves the archive. Without --prune-gone-after the farm keeps it (fleets still run it):
    // gone, its image held, after more runs too
    await mirror.signWith('archive');
    await mirror.removeKernel(SECOND);
    const secondRow = async () => ((await get('/api/v1/archive/kernels')) as Array<{ kernel: string; goneSince?: string; prunedAt?: string }>).find((k) => k.kernel === SECOND);
    const holdsSecond = async () => (await listKfarmImages(runtime)).some((i) => i.name === 'debian-12' && i.kernels.includes(SECOND));
    const inRelease = () => mirror.requests.filter((r) => r.path.endsWith('/InRelease')).length;
    await until(`${SECOND} gone from the archive`, 120_000, async () => (await secondRow())?.goneSince);
    const looks = inRelease();
    await until('two more looks at the archive', 120_000, async () => Promise.resolve(inRelease() >= looks + 2 || undefined));
    await new Promise((r) => setTimeout(r, 3000));
    expect(await secondRow()).not.toHaveProperty('prunedAt');
    expect(await holdsSecond()).toBe(true);

    // with --prune-gone-after 0 (gone at least 0 days ago): the next run removes its image and marks it pruned;
    // its results and its published package stay, the log says what was pruned
    await serve.stop();
    serve = await startServe({ ...env, KFARM_LOG_LEVEL: 'info' }, [...args, '--prune-gone-after', '0']);
    const pruned = await until(`${SECOND} pruned`, 120_000, async () => (await secondRow())?.prunedAt);
    expect(Date.parse(pruned)).toBeGreaterThan(Date.parse((await secondRow())?.goneSince ?? ''));
    expect(await holdsSecond()).toBe(false);
    expect(serve.output()).toMatch(new RegExp(`"kernel":"${SECOND.replace(/[.+]/g, '\\$&')}".*"msg":"pruned a kernel gone from the archive: its image removed, its results kept"`));
    expect(serve.output()).toMatch(new RegExp(`"pruned":\\["${SECOND.replace(/[.+]/g, '\\$&')}"\\].*"msg":"watch run done"`));
    const built = (await get('/api/v1/builds')) as Array<{ id: string; trigger: string }>;
    const watchBuild = built.find((b) => b.trigger === 'watch');
    const detail = (await get(`/api/v1/builds/${watchBuild?.id ?? ''}`)) as { results: Array<{ kernel: string; verdict: string }> };
    expect(detail.results.map((r) => [r.kernel, r.verdict])).toEqual([[SECOND, 'built']]);
    expect(await readFile(packages, 'utf8')).toContain(`Package: hello-modules-${SECOND}\n`);
    // the baseline kernel, still offered, is not touched
    expect(((await get('/api/v1/archive/kernels')) as Array<{ kernel: string; goneSince?: string }>).find((k) => k.kernel === FIRST)).not.toHaveProperty('goneSince');
  }, 1_500_000);
});
