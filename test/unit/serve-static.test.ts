import { describe, expect, it } from 'vitest';
import { contentTypeOf, requestSegments } from '../../src/publish/serve-static.js';

/** The pure parts of `kfarm publish --serve`: which request paths are refused, and content types. */
describe('requestSegments', () => {
  it.each(['/..', '/a/../b', '/%2e%2e/x', '/a/%2E%2E', '/./x', '/a%2f..%2fb', '/a%5cb', '/a%00', '/%zz', 'relative'])('refuses %s', (p) => {
    expect('refused' in requestSegments(p)).toBe(true);
  });
  it('decodes each segment and drops the query and empty segments', () => {
    expect(requestSegments('/apt//dists/bookworm/InRelease?x=1')).toEqual({ segments: ['apt', 'dists', 'bookworm', 'InRelease'] });
    expect(requestSegments('/pool/a%2Bb_1.0.deb')).toEqual({ segments: ['pool', 'a+b_1.0.deb'] });
    expect(requestSegments('/')).toEqual({ segments: [] });
  });
});

describe('contentTypeOf', () => {
  it.each([
    ['pool/main/h/hello/hello_1.0_amd64.deb', 'application/vnd.debian.binary-package'],
    ['Packages/kmod-hello-1.0-1.x86_64.rpm', 'application/x-rpm'],
    ['repodata/repomd.xml', 'application/xml'],
    ['repodata/abc-primary.xml.gz', 'application/gzip'],
    ['dists/bookworm/main/binary-amd64/Packages.xz', 'application/x-xz'],
    ['repodata/repomd.xml.asc', 'application/pgp-signature'],
    ['dists/bookworm/InRelease', 'text/plain; charset=utf-8'],
    ['RPM-GPG-KEY-kfarm', 'application/pgp-keys'],
    ['something', 'application/octet-stream'],
  ])('%s: %s', (file, type) => expect(contentTypeOf(file)).toBe(type));
});
