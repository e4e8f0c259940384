import { readdir, readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import pino from 'pino';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debFile } from '../../src/archive/deb-file.js';
import { DockerRuntime } from '../../src/executor/docker-runtime.js';
import { listKfarmImages } from '../../src/images/catalog.js';
import { createKmmPacker } from '../../src/packaging/kmm/kmm-packer.js';
import { checkStaticElf } from '../../src/packaging/kmm/static-cp.js';
import { readPackInputs } from '../../src/packaging/pack-input.js';
import { debian12Kernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';

/**
 * A KMM image for an arm64 kernel on an amd64 host: its cp is Debian's busybox-static for
 * arm64, fetched through the signed archive into the state dir (the host's /bin/busybox is
 * amd64 and was the only cp before). A second pack from that state dir downloads nothing:
 * its archive is a real HTTP server here that counts requests and holds nothing.
 */
async function arm64Kernel(): Promise<string> {
  const held = (await listKfarmImages(new DockerRuntime())).filter((i) => i.name === 'debian-12' && i.arch === 'aarch64').flatMap((i) => i.kernels);
  if (held[0]) return held.sort()[0]!;
  const kernel = (await debian12Kernels()).k61.replace(/-amd64$/, '-arm64');
  const sync = await kfarm(['images', 'sync', 'debian-12', '--arch', 'arm64', '--kernels', kernel], {}, 3_600_000);
  if (sync.exitCode !== 0) throw new Error(`images sync of ${kernel} failed: ${sync.stderr}`);
  return kernel;
}

/** The regular files of every gzip layer of an OCI archive, path → bytes. */
async function layerFiles(archive: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const [name, data] of await tarFiles(archive)) {
    if (name.startsWith('blobs/sha256/') && data[0] === 0x1f && data[1] === 0x8b) for (const [p, d] of await tarFiles(gunzipSync(data))) files.set(p, d);
  }
  return files;
}

function tarFiles(bytes: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => {
      if (header.type === 'file') files.set(header.name, Buffer.concat(chunks));
      next();
    });
  });
  Readable.from([bytes]).pipe(extract);
  return new Promise((resolve, reject) => {
    extract.on('finish', () => resolve(files));
    extract.on('error', reject);
  });
}

const logger = pino({ level: 'silent' });
let kernel: string;
let stateDir: string;
let out: string;
let server: http.Server;
let mirror: string;
let hits: string[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  mirror = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  kernel = await arm64Kernel();
  const env = await isolatedEnv('kmm-arm64');
  stateDir = env.KFARM_STATE_DIR!;
  out = path.join(await tempDir('kmm-arm64'), 'out');
  const build = await kfarm(['build', example('hello'), '--format', 'kmm', '--kernels', kernel, '--out', out], env);
  expect(build.exitCode, build.stderr).toBe(0);
}, 3_600_000);

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const archiveName = () => `hello-1.0.0-kmm-${kernel}.oci.tar`;

describe('a KMM image for an arm64 kernel', () => {
  it("holds an aarch64 (ELF machine 183) static busybox: Debian's busybox-static, as cached in the state dir", async () => {
    const files = await layerFiles(await readFile(path.join(out, 'kmm', archiveName())));
    const busybox = files.get('bin/busybox');
    expect(busybox).toBeDefined();
    expect(busybox!.readUInt16LE(18)).toBe(183);
    expect(checkStaticElf(busybox!, 'arm64')).toBeUndefined(); // ELF64 LE, aarch64, no PT_INTERP
    const pin = JSON.parse(await readFile(path.join(stateDir, 'archive', 'busybox-static', 'debian-12-arm64.json'), 'utf8')) as { package: string; sha256: string; url: string };
    expect(pin).toMatchObject({
      package: 'busybox-static',
      url: expect.stringMatching(/^http:\/\/deb\.debian\.org\/debian(-security)?\/pool\/main\/b\/busybox\/busybox-static_.*_arm64\.deb$/),
    });
    const deb = await readFile(path.join(stateDir, 'archive', 'debs', `${pin.sha256}.deb`));
    expect(await debFile(deb, './bin/busybox', 'cached')).toEqual(busybox);
  });

  it('is packed again from the state dir with no download, to the same bytes', async () => {
    const cacheFiles = async () => {
      const dir = path.join(stateDir, 'archive');
      const entries = await readdir(dir, { recursive: true, withFileTypes: true });
      return Object.fromEntries(
        await Promise.all(entries.filter((e) => e.isFile()).map(async (e) => [path.join(e.parentPath, e.name), (await stat(path.join(e.parentPath, e.name))).mtimeMs] as const)),
      );
    };
    const before = await cacheFiles();
    const [input] = await readPackInputs(out);
    hits = [];
    const again = path.join(await tempDir('kmm-arm64'), 'again');
    const packer = createKmmPacker({ mirrors: { debian: `${mirror}/debian`, 'debian-security': `${mirror}/debian-security` } });
    await packer.pack(input!, { outDir: again, logger, stateDir });
    expect(hits).toEqual([]);
    expect(await cacheFiles()).toEqual(before);
    expect(await readFile(path.join(again, archiveName()))).toEqual(await readFile(path.join(out, 'kmm', archiveName())));

    // the same pack from an empty state dir goes to that archive (which has nothing) and fails
    const err = await packer.pack(input!, { outDir: path.join(again, 'x'), logger, stateDir: await tempDir('kmm-arm64-empty') }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'COMMAND_FAILED', message: expect.stringContaining('no busybox-static for arm64') });
    expect(hits.some((h) => h.endsWith('/InRelease'))).toBe(true);
  }, 300_000);
});
