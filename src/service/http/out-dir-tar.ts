import { lstat, readdir, readFile } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import tar from 'tar-stream';

/** kfarm's own bookkeeping in an out dir (stages, commit journals): not outputs */
const isBookkeeping = (name: string) => name.startsWith('.kfarm');

/** Pure: the out dir's files, relative, sorted: what `kfarm build --farm` gets (files and dirs only; kfarm writes nothing else there). */
export async function outDirFiles(root: string, rel = ''): Promise<string[]> {
  const files: string[] = [];
  for (const name of (await readdir(path.join(root, rel))).sort()) {
    if (rel === '' && isBookkeeping(name)) continue;
    const relPath = rel === '' ? name : `${rel}/${name}`;
    const st = await lstat(path.join(root, relPath));
    if (st.isDirectory()) files.push(...(await outDirFiles(root, relPath)));
    else if (st.isFile()) files.push(relPath);
  }
  return files;
}

/** Streams the out dir as a tar, a file at a time (a 600-kernel out dir need not fit in memory). */
export async function streamOutDirTar(root: string, res: http.ServerResponse): Promise<void> {
  const files = await outDirFiles(root);
  const pack = tar.pack();
  res.writeHead(200, { 'Content-Type': 'application/x-tar', 'Cache-Control': 'no-store' });
  pack.pipe(res);
  for (const rel of files) {
    const data = await readFile(path.join(root, rel));
    await new Promise<void>((resolve, reject) => pack.entry({ name: rel, mode: 0o644, size: data.length }, data, (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await new Promise<void>((resolve) => res.on('finish', resolve).on('close', resolve));
}
