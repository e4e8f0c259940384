import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSkopeo } from '../../src/publish/oci-skopeo.js';

/**
 * Registry credentials reach skopeo in an auth file of kfarm's own (never an argument, never
 * the user's ~/.docker): a 0600 file in a 0700 directory, gone once the publish closes.
 */
const savedTmp = process.env.TMPDIR;
afterEach(() => {
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
});

describe("skopeo's credentials on disk", () => {
  it('are a 0600 auth file in a 0700 temporary directory, removed by close()', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'kfarm-oci-auth-test-'));
    process.env.TMPDIR = tmp;
    const skopeo = await openSkopeo({ registryHost: 'registry.example:5000', credentials: { user: 'pusher', password: 'a-registry-password' }, tls: {} });
    const [dir, ...others] = await readdir(tmp);
    expect(others).toEqual([]);
    const home = path.join(tmp, dir ?? '');
    expect((await stat(home)).mode & 0o777).toBe(0o700);
    const auth = path.join(home, 'auth.json');
    expect((await stat(auth)).mode & 0o777).toBe(0o600);
    const { auths } = JSON.parse(await readFile(auth, 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(auths['registry.example:5000']?.auth ?? '', 'base64').toString()).toBe('pusher:a-registry-password');
    await skopeo.close();
    expect(await readdir(tmp)).toEqual([]);
  });
});
