import { KfarmError, type ErrorCode } from '../errors/kfarm-error.js';
import { safeRelativePath } from '../executor/archive.js';
import { isValidName, quoteName, type NameKind } from '../dkms/names.js';
import { findEscapingLink, findLayoutProblem, type TreeEntry } from '../util/link-tree.js';
import { readConfNames } from './dkms-conf-names.js';

/**
 * What a DKMS tarball asks to write, checked before anything is written (pure: entries in,
 * a plan or a KfarmError out). Layouts read (shared/reference/dkms.md §2): kfarm's and
 * `dkms mktarball`'s (2.x and 3.x), i.e.
 *   dkms_main_tree/<kernel>/<arch>/{module,log}/...   one dir per kernel (all of them are loaded)
 *   dkms_main_tree/dkms_dbversion                     (2.x; ignored)
 *   dkms_source_tree/...  with dkms.conf              (full tarball), or
 *   dkms_binaries_only/dkms.conf [PACKAGE_NAME ...]   (binaries-only)
 * Refused: absolute names, `..`, hard links, devices, fifos, anything else that is not a file,
 * directory or symlink, a path named twice, an entry below a symlink, a symlink outside
 * dkms_source_tree/ unless it resolves inside its own kernel dir, totals over the caps, no
 * dkms.conf, names outside kfarm's rules (src/dkms/names.ts). Links in dkms_source_tree/ may
 * point anywhere: they are recreated as links, never followed (as read-source-tar.ts carries them).
 */
export interface RawEntry {
  /** the name as the tar header has it */
  name: string;
  /** tar-stream's header type: file, directory, symlink, link, character-device, fifo, ... */
  type: string;
  size: number;
  mode: number;
  linkname?: string | undefined;
  data?: Buffer | undefined;
}

export interface LdLimits {
  maxBytes: number;
  maxEntries: number;
}

export const DEFAULT_LIMITS: LdLimits = { maxBytes: 512 * 1024 * 1024, maxEntries: 100_000 };

export interface TreeWrite {
  /** relative to the unit's root, forward slashes */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  data?: Buffer;
  linkname?: string;
}

export interface KernelPlan {
  kernel: string;
  arch: string;
  /** the contents of <dkms_tree>/<m>/<v>/<kernel>/<arch>/ */
  files: TreeWrite[];
}

export interface TarballPlan {
  tarball: string;
  module: string;
  version: string;
  kind: 'full' | 'binaries-only';
  dkmsConf: Buffer;
  /** the contents of <source_tree>/<m>-<v>/: the whole source, or dkms.conf alone */
  source: TreeWrite[];
  kernels: KernelPlan[];
}

const MAIN = 'dkms_main_tree';
const SOURCE = 'dkms_source_tree';
const BINARIES = 'dkms_binaries_only';

/** The caps, shared by the streaming reader (which stops early) and the plan. */
export function capProblem(entries: number, bytes: number, limits: LdLimits): { code: ErrorCode; message: string } | undefined {
  if (entries > limits.maxEntries) return { code: 'UNSAFE_ARCHIVE', message: `more than ${limits.maxEntries} entries` };
  if (bytes > limits.maxBytes) return { code: 'SOURCE_TOO_LARGE', message: `larger than ${limits.maxBytes} bytes unpacked` };
  return undefined;
}

export function planTarball(tarball: string, raw: readonly RawEntry[], limits: LdLimits = DEFAULT_LIMITS): TarballPlan {
  const refuse = (message: string, entry?: string, code: ErrorCode = 'UNSAFE_ARCHIVE', hint?: string): KfarmError =>
    new KfarmError(code, `${tarball}: ${entry === undefined ? '' : `${quoteName(entry)}: `}${message}; nothing was loaded`, {
      context: { tarball, ...(entry === undefined ? {} : { entry }) },
      hint: hint ?? 'Load only DKMS tarballs from `kfarm build` or `dkms mktarball`; this one is damaged or hostile.',
    });

  const caps = capProblem(
    raw.length,
    raw.reduce((n, e) => n + e.size, 0),
    limits,
  );
  if (caps) throw refuse(caps.message, undefined, caps.code);

  const entries: Array<TreeEntry & { mode: number; data?: Buffer }> = [];
  const seen = new Set<string>();
  for (const e of raw) {
    let p: string;
    try {
      p = safeRelativePath(e.name);
    } catch (err) {
      throw refuse(`${(err as Error).message}: names in a DKMS tarball are relative and stay inside it`, e.name);
    }
    const type = entryType(e.type);
    if (typeof type !== 'string' || !['file', 'directory', 'symlink'].includes(type)) throw refuse(`${describeType(e.type)} entries are not allowed`, e.name);
    if (p === '') {
      if (type === 'directory') continue; // "./"
      throw refuse('an entry without a name', e.name);
    }
    if (seen.has(p)) throw refuse('appears twice in the tarball', p);
    seen.add(p);
    entries.push({
      path: p,
      type: type as TreeEntry['type'],
      mode: e.mode,
      ...(type === 'symlink' ? { linkname: e.linkname ?? '' } : {}),
      ...(type === 'file' ? { data: e.data ?? Buffer.alloc(0) } : {}),
    });
  }
  const layout = findLayoutProblem(entries);
  if (layout) throw refuse(layout);

  for (const e of entries) {
    const top = e.path.split('/')[0];
    if (top !== MAIN && top !== SOURCE && top !== BINARIES) throw refuse(`not part of a DKMS tarball (only ${MAIN}/, ${SOURCE}/ and ${BINARIES}/ are)`, e.path);
  }

  // dkms.conf: dkms_source_tree/ first, then dkms_binaries_only/, as dkms ldtarball looks
  const byPath = new Map(entries.map((e) => [e.path, e]));
  const confEntry = byPath.get(`${SOURCE}/dkms.conf`) ?? byPath.get(`${BINARIES}/dkms.conf`);
  if (!confEntry) {
    throw refuse(
      `no dkms.conf in ${SOURCE}/ or ${BINARIES}/`,
      undefined,
      'DKMS_CONF_MISSING',
      'A DKMS tarball carries its dkms.conf (`dkms mktarball` and `kfarm build` write one).',
    );
  }
  if (confEntry.type !== 'file') throw refuse('dkms.conf is not a regular file', confEntry.path, 'DKMS_CONF_INVALID');
  const kind = confEntry.path.startsWith(`${SOURCE}/`) ? 'full' : 'binaries-only';
  const dkmsConf = confEntry.data ?? Buffer.alloc(0);
  const names = readConfNames(dkmsConf.toString('utf8'));
  const checkName = (kind: NameKind, value: string | null, entry: string, what: string): string => {
    if (value === null) {
      throw refuse(`${what} is not set to a plain value (kfarm reads dkms.conf without running it)`, entry, 'DKMS_CONF_INVALID', `Set ${what}="..." literally in dkms.conf.`);
    }
    if (!isValidName(kind, value)) throw refuse(`${kind} ${quoteName(value)} breaks kfarm's naming rules (letters, digits, _ . + - ~)`, entry);
    return value;
  };
  const module = checkName('module name', names.name, confEntry.path, 'PACKAGE_NAME');
  const version = checkName('module version', names.version, confEntry.path, 'PACKAGE_VERSION');

  // kernels: dkms_main_tree/<kernel>/<arch>/...
  const kernels = new Map<string, KernelPlan>();
  for (const e of entries) {
    const parts = e.path.split('/');
    if (parts[0] !== MAIN) continue;
    if (parts.length === 1) {
      if (e.type !== 'directory') throw refuse(`${MAIN} is not a directory`, e.path);
      continue;
    }
    if (parts.length === 2 && parts[1] === 'dkms_dbversion' && e.type === 'file') continue; // dkms 2.x marker
    const kernel = parts[1] ?? '';
    if (!isValidName('kernel release', kernel)) throw refuse(`kernel release ${quoteName(kernel)} breaks kfarm's naming rules`, e.path);
    if (parts.length === 2) {
      if (e.type !== 'directory') throw refuse(`expected a <kernel>/ directory in ${MAIN}/`, e.path);
      continue;
    }
    const arch = parts[2] ?? '';
    if (!isValidName('arch', arch)) throw refuse(`arch ${quoteName(arch)} breaks kfarm's naming rules`, e.path);
    if (parts.length === 3 && e.type !== 'directory') throw refuse(`expected a <kernel>/<arch>/ directory in ${MAIN}/`, e.path);
    const key = `${kernel}/${arch}`;
    let plan = kernels.get(key);
    if (!plan) {
      plan = { kernel, arch, files: [] };
      kernels.set(key, plan);
    }
    if (parts.length > 3) plan.files.push(toWrite(e, parts.slice(3).join('/')));
  }

  for (const k of kernels.values()) {
    if (!k.files.some((f) => f.type === 'file' && f.path.startsWith('module/') && f.path.split('/').length === 2)) {
      throw refuse('holds no module file in module/', `${MAIN}/${k.kernel}/${k.arch}`);
    }
    // a link in a kernel dir is written to the host's dkms tree: it must stay inside that dir
    const escaping = findEscapingLink(k.files);
    if (escaping) throw refuse(`${escaping} (of ${MAIN}/${k.kernel}/${k.arch})`, `${MAIN}/${k.kernel}/${k.arch}`);
  }
  if (kernels.size === 0) {
    throw refuse(
      `no kernel's binaries in ${MAIN}/: nothing to load`,
      undefined,
      'UNSAFE_ARCHIVE',
      'A source-only tarball has nothing built in it: use `dkms add` and `dkms build` for it.',
    );
  }

  for (const e of entries) {
    if (e.type === 'symlink' && !e.path.startsWith(`${SOURCE}/`) && !e.path.startsWith(`${MAIN}/`)) {
      throw refuse(`a symlink (-> ${e.linkname ?? ''}) outside ${SOURCE}/ and the kernel dirs`, e.path);
    }
  }

  const source =
    kind === 'full'
      ? entries.filter((e) => e.path.startsWith(`${SOURCE}/`)).map((e) => toWrite(e, e.path.slice(SOURCE.length + 1)))
      : [{ path: 'dkms.conf', type: 'file' as const, mode: 0o644, data: dkmsConf }];

  return {
    tarball,
    module,
    version,
    kind,
    dkmsConf,
    source,
    kernels: [...kernels.values()].sort((a, b) => `${a.kernel}/${a.arch}`.localeCompare(`${b.kernel}/${b.arch}`)),
  };
}

/** One module/version's share of a whole `kfarm ldtarball` call (several tarballs may feed one). */
export interface ModulePlan {
  module: string;
  version: string;
  dkmsConf: Buffer;
  source: TreeWrite[];
  sourceFrom: string;
  kernels: Array<KernelPlan & { tarball: string }>;
}

/**
 * Tarballs of one module/version load together: the source of a full tarball wins over a
 * binaries-only dkms.conf; two tarballs with different dkms.conf, or the same kernel twice, are refused.
 */
export function mergePlans(plans: readonly TarballPlan[]): ModulePlan[] {
  const out = new Map<string, ModulePlan>();
  const fullFrom = new Set<string>();
  for (const p of plans) {
    const key = `${p.module}/${p.version}`;
    let m = out.get(key);
    if (!m) {
      m = { module: p.module, version: p.version, dkmsConf: p.dkmsConf, source: p.source, sourceFrom: p.tarball, kernels: [] };
      out.set(key, m);
    } else {
      if (!m.dkmsConf.equals(p.dkmsConf)) {
        throw new KfarmError('BAD_OPTION', `${p.tarball} and ${m.sourceFrom} both hold ${key} with a different dkms.conf; nothing was loaded`, {
          context: { tarball: p.tarball },
          hint: 'Load tarballs of one build together, or one at a time.',
        });
      }
      if (p.kind === 'full' && !fullFrom.has(key)) {
        m.source = p.source;
        m.sourceFrom = p.tarball;
      }
    }
    if (p.kind === 'full') fullFrom.add(key);
    for (const k of p.kernels) {
      const twice = m.kernels.find((o) => o.kernel === k.kernel && o.arch === k.arch);
      if (twice) {
        throw new KfarmError('BAD_OPTION', `${p.tarball} and ${twice.tarball} both hold ${key} for ${k.kernel}/${k.arch}; nothing was loaded`, {
          context: { tarball: p.tarball, kernel: k.kernel },
          hint: 'Give each kernel once.',
        });
      }
      m.kernels.push({ ...k, tarball: p.tarball });
    }
  }
  return [...out.values()];
}

function entryType(type: string): string {
  return type === 'contiguous-file' ? 'file' : type;
}

function describeType(type: string): string {
  switch (type) {
    case 'link':
      return 'hard link';
    case 'character-device':
    case 'block-device':
      return `device file (${type})`;
    case 'fifo':
      return 'fifo';
    default:
      return `${type}`;
  }
}

/** Fixed modes, as a fresh `dkms build` leaves them: 0755 for dirs and executables, 0644 else. */
function toWrite(e: TreeEntry & { mode: number; data?: Buffer }, path: string): TreeWrite {
  if (e.type === 'directory') return { path, type: 'directory', mode: 0o755 };
  if (e.type === 'symlink') return { path, type: 'symlink', mode: 0o777, linkname: e.linkname ?? '' };
  return { path, type: 'file', mode: e.mode & 0o111 ? 0o755 : 0o644, data: e.data ?? Buffer.alloc(0) };
}
