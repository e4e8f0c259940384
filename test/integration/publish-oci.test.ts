import { appendFile, cp, readFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { execa } from 'execa';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKfarmError, type KfarmError } from '../../src/errors/kfarm-error.js';
import { publishOci } from '../../src/publish/oci-publish.js';
import { debian12Kernels, example, isolatedEnv, kfarm, tempDir } from '../helpers/kfarm-cli.js';
import { freePort, skopeoAt, startRegistry, type TestRegistry } from '../helpers/registry.js';

/**
 * The OCI publisher against a real registry (Debian's docker-registry, basic auth, TLS from a
 * test CA; test/helpers/registry.ts), with a real KMM image of hello for a 6.12 kernel (its
 * `+` is not allowed in a tag) from a real `kfarm build --format kmm`. Everything is checked
 * with skopeo, as a cluster's runtime would pull it. Each test publishes under its own path of
 * the one registry, so "nothing was pushed" is a repository the registry does not know.
 */
const { k612: K } = await debian12Kernels();
const TAG = `1.0.0-${K.replace(/\+/g, '_')}`;

interface KmmModule {
  spec: { moduleLoader: { container: { modprobe: { moduleName: string; dirName: string }; kernelMappings: Array<{ literal: string; containerImage: string }> } } };
}

let registry: TestRegistry;
let dir: string;
let out: string;
/** the build's environment: its state dir holds the build, so the `kfarm build --oci` below takes it from the cache */
let buildEnv: Record<string, string>;
const logLines: string[] = [];
const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });

const credentials = () => ({ user: registry.user, password: registry.password });
const tls = () => ({ caCert: registry.caCert });
const publish = (prefix: string, extra: Partial<Parameters<typeof publishOci>[0]> = {}) =>
  publishOci({
    outDirs: [out],
    registry: `${registry.host}/${prefix}`,
    credentials: credentials(),
    tls: tls(),
    manifestDir: path.join(dir, 'manifests', prefix),
    logger,
    ...extra,
  });
const failure = async (p: Promise<unknown>): Promise<KfarmError> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isKfarmError(err)) throw new Error(`expected a KfarmError, got ${String(err)}`);
  return err;
};
/** the tags the registry holds for a repository; [] when it does not know the repository */
const tagsOf = async (repository: string): Promise<string[]> => {
  const r = await skopeoAt(registry, ['list-tags', `docker://${repository}`]);
  if (r.exitCode !== 0) {
    expect(r.stderr).toMatch(/name unknown|404 \(Not Found\)/);
    return [];
  }
  return (JSON.parse(r.stdout) as { Tags: string[] }).Tags;
};
const inspect = async (reference: string) => {
  const r = await skopeoAt(registry, ['inspect', `docker://${reference}`]);
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { Digest: string; Labels: Record<string, string>; Architecture: string };
};

beforeAll(async () => {
  registry = await startRegistry();
  dir = await tempDir('publish-oci');
  out = path.join(dir, 'build');
  buildEnv = await isolatedEnv('publish-oci');
  const build = await kfarm(['build', example('hello'), '--out', out, '--kernels', K, '--format', 'kmm'], buildEnv);
  expect(build.exitCode, build.stderr).toBe(0);
}, 900_000);

afterAll(async () => {
  await registry?.stop();
});

describe('publishOci', () => {
  it('pushes the KMM image under <registry>/<module>:<version>-<kernel> with its labels, and writes the Module pinned by digest', async () => {
    const result = await publish('fleet');
    const reference = `${registry.host}/fleet/hello:${TAG}`;
    expect(result.images).toHaveLength(1);
    expect(result.images[0]).toMatchObject({ reference, kernel: K, module: 'hello', action: 'pushed' });
    expect(await tagsOf(`${registry.host}/fleet/hello`)).toEqual([TAG]);

    const image = await inspect(reference);
    expect(image.Labels).toMatchObject({ 'io.kfarm.kernel': K, 'io.kfarm.module': 'hello', 'io.kfarm.version': '1.0.0' });
    expect(image.Architecture).toBe('amd64');

    // the digest is the archive's own manifest digest (the bytes the build made)
    const archive = path.join(out, 'kmm', `hello-1.0.0-kmm-${K}.oci.tar`);
    const index = JSON.parse((await execa('tar', ['-xOf', archive, 'index.json'])).stdout) as { manifests: Array<{ digest: string }> };
    expect(image.Digest).toBe(index.manifests[0]!.digest);

    expect(result.manifests).toEqual([path.join(dir, 'manifests', 'fleet', 'hello-kmm-module.yaml')]);
    const module = parseYaml(await readFile(result.manifests[0]!, 'utf8')) as KmmModule;
    expect(module).toMatchObject({ apiVersion: 'kmm.sigs.x-k8s.io/v1beta1', kind: 'Module', metadata: { name: 'hello' } });
    expect(module.spec.moduleLoader.container.modprobe).toEqual({ moduleName: 'hello', dirName: '/opt' });
    const mappings = module.spec.moduleLoader.container.kernelMappings;
    expect(mappings).toEqual([{ literal: K, containerImage: `${registry.host}/fleet/hello@${image.Digest}` }]);
    // the manifest's reference resolves, to the same image
    const pinned = await inspect(mappings[0]!.containerImage);
    expect(pinned.Digest).toBe(image.Digest);
    expect(pinned.Labels['io.kfarm.kernel']).toBe(K);

    // the password is in no log line
    expect(logLines.join('')).not.toContain(registry.password);
    expect(logLines.join('')).toContain('KMM image pushed');
  }, 120_000);

  it('re-publishing the same bytes changes nothing', async () => {
    await publish('again');
    const before = await inspect(`${registry.host}/again/hello:${TAG}`);
    const firstManifest = await readFile(path.join(dir, 'manifests', 'again', 'hello-kmm-module.yaml'));
    const second = await publish('again');
    expect(second.images.map((i) => i.action)).toEqual(['present']);
    expect((await inspect(`${registry.host}/again/hello:${TAG}`)).Digest).toBe(before.Digest);
    expect(await tagsOf(`${registry.host}/again/hello`)).toEqual([TAG]);
    expect(await readFile(path.join(dir, 'manifests', 'again', 'hello-kmm-module.yaml'))).toEqual(firstManifest);
  }, 120_000);

  it('refuses a tag the registry holds with other bytes, and leaves it as it was', async () => {
    // the same image in Docker's manifest format: same content, another digest, under the tag
    const reference = `${registry.host}/clash/hello:${TAG}`;
    const archive = path.join(out, 'kmm', `hello-1.0.0-kmm-${K}.oci.tar`);
    const other = await skopeoAt(registry, ['copy', '--format', 'v2s2', `oci-archive:${archive}`, `docker://${reference}`]);
    expect(other.exitCode, other.stderr).toBe(0);
    const before = await inspect(reference);

    const err = await failure(publish('clash'));
    expect(err.code).toBe('PUBLISH_REFUSED');
    expect(err.message).toContain(`${reference} is already published with other bytes`);
    expect((await inspect(reference)).Digest).toBe(before.Digest);
    // no manifest written for a publish that did not happen
    await expect(readFile(path.join(dir, 'manifests', 'clash', 'hello-kmm-module.yaml'))).rejects.toThrow(/ENOENT/);
  }, 120_000);

  it('a wrong password: a clear error (exit 2), nothing pushed, the password in no message or log', async () => {
    const wrong = 'not-the-password-4242';
    logLines.length = 0;
    const err = await failure(publish('wrongpw', { credentials: { user: registry.user, password: wrong } }));
    expect(err.code).toBe('BAD_OPTION');
    expect(err.message).toMatch(new RegExp(`the registry ${registry.host.replace(/\./g, '\\.')} refused the credentials`));
    expect(JSON.stringify({ m: err.message, c: err.context, h: err.hint, l: logLines })).not.toContain(wrong);
    expect(await tagsOf(`${registry.host}/wrongpw/hello`)).toEqual([]);
  }, 120_000);

  it('a registry nobody listens on: unreachable (exit 3)', async () => {
    const port = await freePort();
    const err = await failure(publish('x', { registry: `127.0.0.1:${port}/x` }));
    expect(err.code).toBe('COMMAND_FAILED');
    expect(err.message).toContain(`the registry 127.0.0.1:${port} is unreachable`);
  }, 120_000);

  it("without the test CA the registry's certificate is refused", async () => {
    const err = await failure(publish('noca', { tls: {} }));
    expect(err.code).toBe('COMMAND_FAILED');
    expect(err.message).toMatch(/TLS certificate was not accepted/);
  }, 120_000);

  it('an image whose bytes differ from report.json: refused before anything is pushed', async () => {
    const copy = path.join(dir, 'tampered');
    await cp(out, copy, { recursive: true });
    await appendFile(path.join(copy, 'kmm', `hello-1.0.0-kmm-${K}.oci.tar`), Buffer.from([0]));
    const err = await failure(publish('tampered', { outDirs: [copy] }));
    expect(err.code).toBe('PUBLISH_REFUSED');
    expect(err.message).toMatch(/is not the file .*report\.json lists/);
    expect(await tagsOf(`${registry.host}/tampered/hello`)).toEqual([]);
  }, 120_000);
});

describe('kfarm publish --oci', () => {
  it('pushes with credentials from the environment and writes the Module into --oci-manifests; a wrong password exits 2', async () => {
    const manifests = path.join(dir, 'cli-manifests');
    const args = ['publish', out, '--oci', `${registry.host}/cli`, '--oci-ca', registry.caCert, '--oci-manifests', manifests];
    const env = { ...(await isolatedEnv('publish-oci-cli')), KFARM_OCI_USER: registry.user };

    const refused = await kfarm(args, { ...env, KFARM_OCI_PASSWORD: 'wrong-password-77' });
    expect(refused.exitCode, refused.stderr).toBe(2);
    expect(refused.stderr).toContain('refused the credentials');
    expect(refused.stderr + refused.stdout).not.toContain('wrong-password-77');
    expect(await tagsOf(`${registry.host}/cli/hello`)).toEqual([]);

    const ok = await kfarm(args, { ...env, KFARM_OCI_PASSWORD: registry.password });
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`oci  pushed     ${registry.host}/cli/hello:${TAG}`);
    expect(ok.stderr + ok.stdout).not.toContain(registry.password);
    const module = parseYaml(await readFile(path.join(manifests, 'hello-kmm-module.yaml'), 'utf8')) as KmmModule;
    const image = module.spec.moduleLoader.container.kernelMappings[0]!.containerImage;
    expect(image).toMatch(new RegExp(`^${registry.host.replace(/\./g, '\\.')}/cli/hello@sha256:[0-9a-f]{64}$`));
    expect((await inspect(image)).Labels['io.kfarm.kernel']).toBe(K);
  }, 120_000);
});

describe('kfarm build --oci', () => {
  it('builds and pushes in one go: the pushed image has its labels, the Module names it by digest', async () => {
    const buildOut = path.join(dir, 'build-oci');
    const manifests = path.join(dir, 'build-oci-manifests');
    const env = { ...buildEnv, KFARM_OCI_USER: registry.user, KFARM_OCI_PASSWORD: registry.password };
    const args = ['build', example('hello'), '--out', buildOut, '--kernels', K, '--format', 'kmm'];
    const r = await kfarm([...args, '--oci', `${registry.host}/build`, '--oci-ca', registry.caCert, '--oci-manifests', manifests], env);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`oci  pushed     ${registry.host}/build/hello:${TAG}`);
    expect(r.stderr + r.stdout).not.toContain(registry.password);
    const image = await inspect(`${registry.host}/build/hello:${TAG}`);
    expect(image.Labels).toMatchObject({ 'io.kfarm.kernel': K, 'io.kfarm.module': 'hello', 'io.kfarm.version': '1.0.0' });
    const module = parseYaml(await readFile(path.join(manifests, 'hello-kmm-module.yaml'), 'utf8')) as KmmModule;
    expect(module.spec.moduleLoader.container.kernelMappings).toEqual([{ literal: K, containerImage: `${registry.host}/build/hello@${image.Digest}` }]);
  }, 600_000);

  it('--oci without kmm in --format is refused before building (exit 2): no out dir, nothing pushed', async () => {
    const buildOut = path.join(dir, 'build-oci-nokmm');
    const r = await kfarm(
      ['build', example('hello'), '--out', buildOut, '--kernels', K, '--format', 'bmdeb', '--oci', `${registry.host}/nokmm`, '--oci-ca', registry.caCert],
      buildEnv,
    );
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toContain('--oci needs KMM images: add kmm to --format');
    await expect(readFile(path.join(buildOut, 'report.json'))).rejects.toThrow(/ENOENT/);
    expect(await tagsOf(`${registry.host}/nokmm/hello`)).toEqual([]);
  }, 120_000);
});
