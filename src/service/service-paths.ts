import path from 'node:path';
import { farmDbPath } from './db/open-farm-db.js';

/**
 * Where `kfarm serve` keeps what it owns, all under <state>/service/. Every name below it is
 * made here from values the service made itself (a sha256 it computed, a build id it issued),
 * never from what a client sent.
 */
export interface ServicePaths {
  root: string;
  db: string;
  /** uploaded sources, as received: <sha256>.tar */
  sources: string;
  builds: string;
}

export function servicePaths(stateDir: string): ServicePaths {
  const root = path.join(stateDir, 'service');
  return { root, db: farmDbPath(stateDir), sources: path.join(root, 'sources'), builds: path.join(root, 'builds') };
}

const SHA256 = /^[0-9a-f]{64}$/;
const BUILD_ID = /^b-[0-9]{14}-[0-9a-f]{6}$/;

export function sourceFile(paths: ServicePaths, sha256: string): string {
  if (!SHA256.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
  return path.join(paths.sources, `${sha256}.tar`);
}

/** A build's own directory: src/ (its source, unpacked) and out/ (what kfarm build writes). */
export function buildDir(paths: ServicePaths, id: string): { dir: string; src: string; out: string } {
  if (!BUILD_ID.test(id)) throw new Error(`not a build id: ${id}`);
  const dir = path.join(paths.builds, id);
  return { dir, src: path.join(dir, 'src'), out: path.join(dir, 'out') };
}

export const isBuildId = (id: string): boolean => BUILD_ID.test(id);
