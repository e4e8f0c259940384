import { describe, expect, it } from 'vitest';
import { isKfarmError } from '../../src/errors/kfarm-error.js';
import { moduleMappings, ociTargets, planOciPublish, type OciImage } from '../../src/publish/oci-plan.js';
import { classifySkopeoError } from '../../src/publish/oci-skopeo.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const image = (over: Partial<OciImage> = {}): OciImage => ({
  module: 'hello',
  version: '1.0.0',
  kernel: '6.12.118+deb12-amd64',
  archive: '/out/kmm/hello.oci.tar',
  digest: D1,
  moduleYaml: 'kind: Module',
  ...over,
});
const thrown = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    if (isKfarmError(err)) return err;
    throw err;
  }
  throw new Error('did not throw');
};

describe('ociTargets', () => {
  it('names <registry>/<module>:<version>-<kernel> (no + in a tag) and pins by digest', () => {
    const [t] = ociTargets([image({ module: 'My_Mod' })], 'registry.example.com:5000/team/');
    expect(t).toMatchObject({
      repository: 'registry.example.com:5000/team/my-mod',
      tag: '1.0.0-6.12.118_deb12-amd64',
      reference: 'registry.example.com:5000/team/my-mod:1.0.0-6.12.118_deb12-amd64',
      pinned: `registry.example.com:5000/team/my-mod@${D1}`,
    });
  });

  it('refuses a registry without a host (a tool would push to Docker Hub) and one that is no repository', () => {
    expect(thrown(() => ociTargets([image()], 'team')).message).toContain('names no registry host');
    expect(thrown(() => ociTargets([image()], 'Registry.example.com/UPPER')).code).toBe('BAD_OPTION');
    expect(ociTargets([image()], 'localhost/x')[0]?.repository).toBe('localhost/x/hello');
  });

  it('one image given twice is pushed once; two different images under one tag are refused', () => {
    expect(ociTargets([image(), image({ archive: '/other/hello.oci.tar' })], 'r.example/x')).toHaveLength(1);
    expect(thrown(() => ociTargets([image(), image({ digest: D2 })], 'r.example/x')).message).toContain('two images for r.example/x/hello:1.0.0-6.12.118_deb12-amd64');
  });
});

describe('planOciPublish', () => {
  const targets = ociTargets([image(), image({ kernel: '6.1.0-57-amd64', digest: D2 })], 'r.example/x');
  it('pushes absent tags and leaves a tag with the same digest alone', () => {
    const plan = planOciPublish(targets, new Map([[targets[1]!.reference, targets[1]!.digest]]));
    expect(plan.map((s) => [s.target.kernel, s.action])).toEqual([
      ['6.1.0-57-amd64', 'push'],
      ['6.12.118+deb12-amd64', 'present'],
    ]);
  });

  it('refuses the whole publish when a tag names other bytes', () => {
    const err = thrown(() => planOciPublish(targets, new Map([[targets[0]!.reference, D1]])));
    expect(err.code).toBe('PUBLISH_REFUSED');
    expect(err.message).toContain(`${targets[0]!.reference} is already published with other bytes`);
  });
});

describe('moduleMappings', () => {
  it('one Module per module, kernels sorted, each to its pinned image; two versions for one kernel refused', () => {
    const m = moduleMappings(ociTargets([image(), image({ kernel: '6.1.0-57-amd64', digest: D2 })], 'r.example/x')).get('hello');
    expect(m?.mappings).toEqual([
      { kernel: '6.1.0-57-amd64', image: `r.example/x/hello@${D2}` },
      { kernel: '6.12.118+deb12-amd64', image: `r.example/x/hello@${D1}` },
    ]);
    expect(m?.version).toBe('1.0.0');
    expect(thrown(() => moduleMappings(ociTargets([image(), image({ version: '1.1.0', digest: D2 })], 'r.example/x'))).message).toContain(
      'hello has two images for kernel 6.12.118+deb12-amd64',
    );
  });
});

describe('classifySkopeoError', () => {
  it.each([
    ['reading manifest x in r/hello: unauthorized: authentication required', 'unauthorized'],
    ['reading manifest nope in 127.0.0.1:5999/hello: manifest unknown: manifest unknown', 'not-found'],
    ['pinging container registry 127.0.0.1:5998: Get "https://127.0.0.1:5998/v2/": dial tcp 127.0.0.1:5998: connect: connection refused', 'unreachable'],
    ['pinging container registry 127.0.0.1:5999: Get "https://127.0.0.1:5999/v2/": x509: certificate signed by unknown authority', 'tls'],
    ['something else', 'other'],
  ])('%s → %s', (stderr, kind) => {
    expect(classifySkopeoError(stderr)).toBe(kind);
  });
});
