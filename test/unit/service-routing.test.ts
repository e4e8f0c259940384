import { describe, expect, it } from 'vitest';
import { flavourOf } from '../../src/service/builds/result-rows.js';
import { matchRoute } from '../../src/service/http/service-server.js';
import { ROUTES } from '../../src/service/http/service-routes.js';
import { declaredIdentity, rooted } from '../../src/service/source-upload.js';

describe('matchRoute', () => {
  it('matches templates, decodes parameters, and takes the rest of the path for {path}', () => {
    const m = matchRoute(ROUTES, 'GET', '/api/v1/builds/b-20261208001519-54656e/artifacts/bmdeb/hello%2Bx.deb');
    expect(m && 'route' in m ? [m.route.path, m.params] : m).toEqual(['/api/v1/builds/{id}/artifacts/{path}', { id: 'b-20261208001519-54656e', path: 'bmdeb/hello+x.deb' }]);
    const put = matchRoute(ROUTES, 'PUT', '/api/v1/modules/hello');
    expect(put && 'route' in put ? put.route.scope : undefined).toBe('submit');
  });

  it('says which methods a known path allows, and nothing for an unknown path', () => {
    expect(matchRoute(ROUTES, 'PATCH', '/api/v1/modules/hello')).toEqual({ methods: ['GET', 'PUT', 'DELETE'] });
    expect(matchRoute(ROUTES, 'GET', '/api/v1/nope')).toBeUndefined();
    // an empty parameter or bad percent-encoding matches nothing
    expect(matchRoute(ROUTES, 'GET', '/api/v1/modules/')).toBeUndefined();
    expect(matchRoute(ROUTES, 'GET', '/api/v1/modules/%E0%A4%A')).toBeUndefined();
  });

  it('guards every route that is not public with a scope', () => {
    const open = ROUTES.filter((r) => !r.scope).map((r) => `${r.method} ${r.path}`);
    expect(open.sort()).toEqual(['GET /', 'GET /api/v1/health', 'GET /login', 'POST /login']);
  });
});

describe('uploaded sources', () => {
  const e = (p: string) => ({ path: p, type: 'file' as const, mode: 0o644, data: Buffer.from('x') });
  it('takes dkms.conf at the root, or the one top directory that holds it as the root', () => {
    expect(rooted([e('dkms.conf'), e('a.c')]).map((x) => x.path)).toEqual(['dkms.conf', 'a.c']);
    expect(rooted([{ path: 'hello-1.0', type: 'directory', mode: 0o755 }, e('hello-1.0/dkms.conf'), e('hello-1.0/a.c')]).map((x) => x.path)).toEqual(['dkms.conf', 'a.c']);
    expect(() => rooted([e('a/dkms.conf'), e('b/x.c')])).toThrow(/no dkms.conf/);
  });

  it('reads PACKAGE_NAME and PACKAGE_VERSION only when dkms.conf assigns plain words', () => {
    expect(declaredIdentity('PACKAGE_NAME="hello"\nPACKAGE_VERSION=1.0.0 # x\n')).toEqual({ name: 'hello', version: '1.0.0' });
    expect(declaredIdentity('PACKAGE_NAME=$(cat name)\nPACKAGE_VERSION="${V}"\n')).toEqual({});
  });

  it("names a kernel's flavour", () => {
    expect(['6.1.0-57-amd64', '6.1.0-57-cloud-amd64', '6.12.48+deb13-rt-arm64', '6.12.118+deb12-arm64-16k', '5.10.0-35-amd64'].map(flavourOf)).toEqual([
      'amd64',
      'cloud-amd64',
      'rt-arm64',
      'arm64-16k',
      'amd64',
    ]);
  });
});
