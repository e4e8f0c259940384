import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { KfarmError } from '../errors/kfarm-error.js';

/**
 * `kfarm build --dkms-overrides DIR`: what a host keeps in /etc/dkms for dkms to source after a
 * module's dkms.conf (`<module>.conf`, `<module>-<version>.conf`, `-<kernel>`, `-<arch>`, and
 * dkms 3.2's `<module>--<kernel>[-<arch>].conf`). The files travel with the job (they are part
 * of its id) and the driver puts them where each release's dkms looks.
 */
export interface DkmsOverride {
  name: string;
  text: string;
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+~-]{0,200}\.conf$/;
const MAX_FILES = 64;
const MAX_BYTES = 65536;

export async function readDkmsOverrides(dir: string): Promise<DkmsOverride[]> {
  const bad = (message: string, hint: string) => new KfarmError('BAD_OPTION', `--dkms-overrides ${dir}: ${message}`, { context: { dir }, hint });
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    throw bad(err.code === 'ENOENT' ? 'no such directory' : `cannot read it (${err.code ?? err.message})`, 'Pass a directory holding /etc/dkms-style <module>.conf files.');
  });
  const confs = names.filter((n) => n.endsWith('.conf')).sort();
  if (confs.length === 0) throw bad('holds no *.conf file', 'dkms reads /etc/dkms/<module>.conf, <module>-<version>.conf, ... : put such files there.');
  if (confs.length > MAX_FILES) throw bad(`holds ${confs.length} .conf files, more than ${MAX_FILES}`, 'Keep the overrides of the modules you build.');
  const files: DkmsOverride[] = [];
  for (const name of confs) {
    if (!NAME.test(name)) throw bad(`${JSON.stringify(name)} is not a name dkms would read`, 'Name it <module>[-<version>[-<kernel>[-<arch>]]].conf.');
    const file = path.join(dir, name);
    const info = await lstat(file);
    if (!info.isFile()) throw bad(`${name} is not a regular file`, 'Copy the file in instead of linking it.');
    if (info.size > MAX_BYTES) throw bad(`${name} is ${info.size} bytes, more than ${MAX_BYTES}`, 'An override sets a few directives; keep it small.');
    const text = await readFile(file, 'utf8');
    if (text.includes('\0')) throw bad(`${name} holds a NUL byte`, 'An override is a shell text file.');
    files.push({ name, text });
  }
  return files;
}
