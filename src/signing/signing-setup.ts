import type { ContainerRuntime } from '../executor/runtime.js';
import { KfarmError } from '../errors/kfarm-error.js';
import type { KfarmImage } from '../images/catalog.js';
import { mapLimit } from '../util/map-limit.js';
import { lastLines, runSigner } from './signer-container.js';
import { loadTokenKey, type TokenKey } from './pkcs11-token.js';
import { isPkcs11Uri, redact } from './pkcs11-uri.js';
import { certKeyType, loadSigningKey, type CertKeyType, type SigningKey } from './signing-key.js';

export interface KernelSigner {
  kernel: string;
  image: string;
  /** the sign-file the container found (the kernel's own, from linux-kbuild) */
  signFile: string;
  /** CONFIG_MODULE_SIG_HASH of the kernel */
  hash: string;
  /** CONFIG_CRYPTO_ECDSA is y or m: the kernel can verify an ECDSA module signature (Debian: 6.12 and later, not 6.1) */
  ecdsa: boolean;
}

export interface SigningSetup {
  /** a key file's key, or a key in a PKCS#11 token (signed on this host: host-sign.ts) */
  key: SigningKey | TokenKey;
  /** one per (image, kernel) the build will use */
  kernels: KernelSigner[];
}

/** the hashes sign-file accepts that a kernel config names (crypto/Kconfig MODULE_SIG_*) */
const HASHES = new Set(['sha1', 'sha224', 'sha256', 'sha384', 'sha512', 'sha3-256', 'sha3-384', 'sha3-512']);

/**
 * Before any build: the key and certificate are readable, unencrypted (or KBUILD_SIGN_PIN
 * opens them) and belong together, and every kernel the build will use has a sign-file
 * that runs and a CONFIG_MODULE_SIG_HASH. Anything else is a BAD_OPTION (exit 2) saying
 * what to do: never a silently unsigned module.
 */
export async function checkSigningSetup(request: {
  keyPath: string;
  certPath: string;
  images: readonly KfarmImage[];
  runtime: ContainerRuntime;
  pin?: string;
  labels?: Record<string, string>;
}): Promise<SigningSetup> {
  // a token's key is signed with on this host, but the probe still reads each kernel's hash from its image
  const key = isPkcs11Uri(request.keyPath)
    ? await loadTokenKey(request.keyPath, request.certPath)
    : await loadSigningKey({ keyPath: request.keyPath, certPath: request.certPath, pin: request.pin });
  const targets = request.images.flatMap((image) => image.kernels.map((kernel) => ({ image: image.ref, kernel })));
  const kernels = await mapLimit(targets, 2, (t) => probeKernel(request.runtime, t.image, t.kernel, request.labels));
  refuseUnverifiable(await certKeyType(key.certPem), kernels, request.keyPath);
  return { key, kernels };
}

/**
 * Module signatures the kernel cannot check are refused before any build, never written: an
 * RSA key always; an ECDSA key (P-256, P-384) only for kernels built with CONFIG_CRYPTO_ECDSA
 * (Debian 12's 6.1 kernels are not: their module loader cannot verify such a signature, so
 * under Secure Boot the module would not load); any other key type (Ed25519, ...) never.
 */
export function refuseUnverifiable(keyType: CertKeyType, kernels: readonly KernelSigner[], keyPath: string): void {
  if (keyType.type === 'rsa') return;
  const context = { 'sign-key': redact(keyPath) };
  if (keyType.type === 'other') {
    throw new KfarmError('BAD_OPTION', `--sign-key ${redact(keyPath)}: a ${keyType.name} key cannot sign kernel modules`, {
      context,
      hint: 'Module signatures are RSA or ECDSA (P-256, P-384): make an RSA key (`openssl req -newkey rsa:4096 ...`).',
    });
  }
  const without = kernels.filter((k) => !k.ecdsa).map((k) => k.kernel);
  if (without.length > 0) {
    throw new KfarmError(
      'BAD_OPTION',
      `--sign-key ${redact(keyPath)}: an ECDSA ${keyType.curve} key, but ${without.join(', ')} cannot verify ECDSA module signatures (CONFIG_CRYPTO_ECDSA is not set)`,
      {
        context: { ...context, kernels: without.join(',') },
        hint: 'Such a module would not load under Secure Boot on those kernels (Debian 12 6.1 kernels; 6.12 and later verify ECDSA). Sign with an RSA key, or leave those kernels out of --kernels.',
      },
    );
  }
}

async function probeKernel(runtime: ContainerRuntime, image: string, kernel: string, labels: Record<string, string> | undefined): Promise<KernelSigner> {
  // signing runs on this host's engine, after the build: the image must be here, not only on a worker
  if (!(await runtime.inspectImage(image))) {
    throw new KfarmError('BAD_OPTION', `cannot sign modules for ${kernel}: its image ${image} is not on this host`, {
      context: { kernel, image },
      hint: "Modules are signed by the host that runs `kfarm build`, in a container of the kernel's image: get it here (`kfarm images sync`, or `docker save <image> | docker load` from a worker).",
    });
  }
  const run = await runSigner({ runtime, image, kernel, mode: 'probe', stdin: Buffer.alloc(0), workMiB: 1, outputLimitBytes: 4096, labels });
  const text = run.output?.toString('utf8') ?? '';
  const signFile = /^sign_file=(\/[^\n]+)$/m.exec(text)?.[1];
  const hash = /^hash=([a-z0-9-]+)$/m.exec(text)?.[1];
  const ecdsa = /^ecdsa=[ym]$/m.test(text);
  if (run.exitCode !== 0 || !signFile || !hash) {
    const missing = run.exitCode === 3 || run.exitCode === 5;
    throw new KfarmError(
      'BAD_OPTION',
      missing
        ? `cannot sign modules for ${kernel}: its image ${image} has no sign-file that runs`
        : `cannot sign modules for ${kernel}: its image ${image} does not say how (${run.exitCode === 4 ? 'no CONFIG_MODULE_SIG_HASH' : `the probe exited with status ${run.exitCode}`})`,
      {
        context: { kernel, image },
        hint: `sign-file comes with the kernel's linux-kbuild package (/usr/lib/linux-kbuild-<version>/scripts/sign-file). Rebuild the image (\`kfarm images build\`), or leave this kernel out of --kernels. ${lastLines(run.log)}`,
      },
    );
  }
  if (!HASHES.has(hash)) {
    throw new KfarmError('BAD_OPTION', `cannot sign modules for ${kernel}: its CONFIG_MODULE_SIG_HASH is ${hash}, which kfarm does not know`, { context: { kernel, image, hash } });
  }
  return { kernel, image, signFile, hash, ecdsa };
}
