import { mkdir, readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { tempDir } from './kfarm-cli.js';

/**
 * A real OCI registry for the publish tests: Debian's `docker-registry` (the reference
 * distribution registry, 2.8) on 127.0.0.1 at a free port, with basic auth (an htpasswd file,
 * bcrypt from `htpasswd -B`: the only hash distribution's htpasswd accepts) and TLS from a CA
 * made here with openssl (its certificate names IP 127.0.0.1). Storage in a temp dir.
 */
export interface TestRegistry {
  /** 127.0.0.1:<port> */
  host: string;
  user: string;
  password: string;
  /** the test CA's certificate (PEM) */
  caCert: string;
  /** a directory holding only ca.crt, for skopeo's --cert-dir */
  certDir: string;
  dir: string;
  stop(): Promise<void>;
}

export async function startRegistry(): Promise<TestRegistry> {
  const dir = await tempDir('registry');
  const certDir = path.join(dir, 'certs');
  const openssl = (args: string[]) => execa('openssl', args, { cwd: dir });
  await mkdir(certDir);
  await mkdir(path.join(dir, 'data'));
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'certs/ca.crt', '-days', '2', '-subj', '/CN=kfarm test registry CA']);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  await writeFile(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n');
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'certs/ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext']);
  const user = 'kfarm-publisher';
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  await execa('htpasswd', ['-B', '-b', '-c', path.join(dir, 'htpasswd'), user, password]);
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = {
    version: 0.1,
    log: { level: 'warn' },
    storage: { filesystem: { rootdirectory: path.join(dir, 'data') } },
    http: { addr: host, secret: 'kfarm-test', tls: { certificate: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') } },
    auth: { htpasswd: { realm: 'kfarm-test', path: path.join(dir, 'htpasswd') } },
  };
  // JSON is YAML: the registry reads it as its config file
  await writeFile(path.join(dir, 'config.yml'), JSON.stringify(config));
  const child: ResultPromise = execa('docker-registry', ['serve', path.join(dir, 'config.yml')], { reject: false, all: true });
  const caCert = path.join(certDir, 'ca.crt');
  const ca = await readFile(caCert);
  const deadline = Date.now() + 30_000;
  for (;;) {
    // the registry answers /v2/ with 401 once it serves: that is "up"
    const status = await new Promise<number | undefined>((resolve) => {
      const req = https.get({ host: '127.0.0.1', port, path: '/v2/', ca, timeout: 2000 }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', () => resolve(undefined));
    });
    if (status === 401) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill();
      const out = await child;
      throw new Error(`docker-registry did not start on ${host}: ${String(out.all)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    host,
    user,
    password,
    caCert,
    certDir,
    dir,
    stop: async () => {
      child.kill('SIGTERM');
      await child;
    },
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** skopeo against the test registry with its CA and the given credentials (argv is fine in a test). */
export async function skopeoAt(registry: TestRegistry, args: string[], creds = `${registry.user}:${registry.password}`) {
  const [verb, ...rest] = args;
  const side = verb === 'copy' ? '--dest-' : '--';
  return execa('skopeo', [verb!, `${side}cert-dir`, registry.certDir, `${side}creds`, creds, ...rest], { reject: false });
}
