import { createHash } from 'node:crypto';
import type { TarEntry } from '../../executor/archive.js';

/**
 * A binary package as data: the control file's fields, the maintainer scripts and the files
 * below `/`, every directory listed. Built by the formats' pure layouts, turned into a .deb by
 * build-deb.ts only.
 */
export interface DebLayout {
  /** `<package>_<version>_<arch>.deb` */
  fileName: string;
  /** DEBIAN/control, text */
  control: string;
  /** DEBIAN/<script>, each a complete sh script */
  scripts: Partial<Record<'postinst' | 'prerm' | 'postrm', string>>;
  /** the payload, paths relative to / (`lib/modules/...`), sorted, parents before children */
  entries: TarEntry[];
}

export type ControlField = readonly [name: string, value: string];

/**
 * deb-control(5) text. Description's first line is the synopsis; the others become
 * continuation lines (` ` + text, ` .` for an empty one). No other field may hold a newline.
 */
export function controlText(fields: readonly ControlField[]): string {
  const lines: string[] = [];
  for (const [name, value] of fields) {
    if (name === 'Description') {
      const [synopsis = '', ...rest] = value.split('\n');
      lines.push(`Description: ${synopsis}`, ...rest.map((l) => (l.trim() === '' ? ' .' : ` ${l}`)));
    } else {
      if (/[\r\n]/.test(value)) throw new Error(`control field ${name} holds a newline`);
      lines.push(`${name}: ${value}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Installed-Size in KiB as dpkg-gencontrol estimates it: each file rounded up to 1 KiB, 1 per directory. */
export function installedSize(entries: readonly TarEntry[]): number {
  let kib = 0;
  for (const e of entries) kib += e.type === 'file' ? Math.ceil((e.data?.length ?? 0) / 1024) : 1;
  return kib;
}

/** DEBIAN/md5sums as dh_md5sums writes it (debsums reads it): `<md5>  <path>`, sorted by path. */
export function md5sums(entries: readonly TarEntry[]): string {
  return entries
    .filter((e) => e.type === 'file')
    .map(
      (e) =>
        `${createHash('md5')
          .update(e.data ?? Buffer.alloc(0))
          .digest('hex')}  ${e.path}`,
    )
    .sort((a, b) => (a.slice(34) < b.slice(34) ? -1 : 1))
    .map((l) => `${l}\n`)
    .join('');
}

/** The directories and files of a payload: every parent directory (0755) once, then sorted. */
export function withParents(files: ReadonlyArray<{ path: string; data: Buffer; mode?: number }>): TarEntry[] {
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  const entries: TarEntry[] = [
    ...[...dirs].map((p): TarEntry => ({ path: p, type: 'directory', mode: 0o755 })),
    ...files.map((f): TarEntry => ({ path: f.path, type: 'file', mode: f.mode ?? 0o644, data: f.data })),
  ];
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
