/**
 * The symlinks of a tree (a tar's entries, a source dir's walk), checked two ways.
 *
 * - Layout (findLayoutProblem): no path is named twice where one is a link, and nothing lies
 *   below a link. Unpacking such a tree would write through a link, wherever it points; every
 *   tree kfarm unpacks or packs must pass this.
 * - Escape (findEscapingLink): every link stays inside the tree. For what a build hands back
 *   (its output is unpacked on the host). A module source may hold links leading out (DKMS
 *   copies them as links: `README.gz -> /usr/share/doc/...`); they are carried, never followed.
 *   A textual check of each link alone is not enough: `d/l1 -> ..` is harmless and so, read as
 *   text, is `a -> d/l1/..`, but followed on a disk `a` resolves to the parent of the tree.
 *   So each link is resolved the way the kernel walks a path: component by component, `..`
 *   taken from where the walk really is, every link of the tree on the way followed (up to a
 *   depth, as ELOOP does).
 *
 * Pure; the tree is the entry list.
 */
export interface TreeEntry {
  /** relative, forward slashes, no `.` or `..` segments */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  linkname?: string;
}

/** Linux gives up after 40 links in one walk; so does this. */
export const MAX_LINK_HOPS = 40;

/** A description of the first entry that would be written through a link, or undefined. */
export function findLayoutProblem(entries: readonly TreeEntry[]): string | undefined {
  const links = linksOf(entries);
  if (typeof links === 'string') return links;
  return belowLink(entries, links);
}

/** A description of the first link that leaves the tree (or loops), or undefined when all stay inside (layout problems first). */
export function findEscapingLink(entries: readonly TreeEntry[]): string | undefined {
  const links = linksOf(entries);
  if (typeof links === 'string') return links;
  const below = belowLink(entries, links);
  if (below) return below;
  for (const [linkPath, target] of links) {
    const where = resolveLink(links, linkPath, target);
    if (where === 'outside') return `symlink ${linkPath} -> ${target} points outside the tree`;
    if (where === 'loop') return `symlink ${linkPath} -> ${target} does not resolve (more than ${MAX_LINK_HOPS} links in a row, a loop)`;
  }
  return undefined;
}

/** The links of the tree by path, or a description of a path named twice where one is a link. */
function linksOf(entries: readonly TreeEntry[]): Map<string, string> | string {
  const links = new Map<string, string>();
  const seen = new Map<string, TreeEntry['type']>();
  for (const entry of entries) {
    const before = seen.get(entry.path);
    // a tar may name one path twice; extracted, the later entry wins over (or writes through) the earlier link
    if (before !== undefined && (before === 'symlink' || entry.type === 'symlink')) return `${entry.path} appears twice, once as a symlink`;
    seen.set(entry.path, entry.type);
    if (entry.type === 'symlink') links.set(entry.path, entry.linkname ?? '');
  }
  return links;
}

function belowLink(entries: readonly TreeEntry[], links: ReadonlyMap<string, string>): string | undefined {
  for (const entry of entries) {
    const parts = entry.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (links.has(prefix)) return `${entry.path} lies below the symlink ${prefix}: extracting it would write through the link`;
    }
  }
  return undefined;
}

/** Where a link leads: a path inside the tree, 'outside', or 'loop'. */
// eslint-disable-next-line @typescript-eslint/no-redundant-type-constituents -- the literals name the two answers that are not paths, for the reader; as types they fold into string
export function resolveLink(links: ReadonlyMap<string, string>, linkPath: string, target: string): string | 'outside' | 'loop' {
  if (target.startsWith('/')) return 'outside';
  const real: string[] = [];
  const todo = [...linkPath.split('/').slice(0, -1), ...target.split('/')];
  let hops = 0;
  while (todo.length > 0) {
    const part = todo.shift() ?? '';
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (real.length === 0) return 'outside';
      real.pop();
      continue;
    }
    const next = [...real, part].join('/');
    const link = links.get(next);
    if (link === undefined) {
      real.push(part);
      continue;
    }
    if (++hops > MAX_LINK_HOPS) return 'loop';
    if (link.startsWith('/')) return 'outside';
    // the link's target is relative to the directory holding it: where the walk is now
    todo.unshift(...link.split('/'));
  }
  return real.join('/');
}
