import type { ModuleSettings, ResultRow } from '../farm-db.js';

/**
 * The dashboard's model: what `GET /api/v1/dashboard` answers (JSON) and what render-dashboard.ts
 * turns into the page. The page's script polls that endpoint and updates itself from the same
 * shape, so one versioned type serves both. Every string in it may come from a stranger (a
 * module's name, a compiler's error, a Debian changelog): the renderers escape all of it.
 *
 * Links are paths below the server's root, filled by the server, never full URLs. The page
 * prefixes them with its base (a reverse proxy's mount point) and drops any that is not a
 * plain `/api/v1/...` path (see safeApiPath). The paths kfarm serve answers:
 * - a build's report: `/api/v1/builds/<id>/report`
 * - a kernel's build log: `/api/v1/builds/<id>/artifacts/logs/<kernel>.log` (the out dir's
 *   logs/<kernel>.log of a one-source build)
 * - a kernel's load console: `/api/v1/builds/<id>/artifacts/logs/load/<module>/<kernel>.log`
 * buildLinks() makes them, each segment percent-encoded.
 */

export const DASHBOARD_SCHEMA_VERSION = 1;

export interface DashboardModule {
  /** PACKAGE_NAME */
  name: string;
  /** PACKAGE_VERSION of the registered source */
  version: string;
  settings: ModuleSettings;
}

export interface DashboardKernel {
  /** uname -r: 6.1.0-57-amd64 */
  kernel: string;
  /** debian-12 */
  release: string;
  /** Debian arch: amd64, arm64 */
  arch: string;
  /** amd64, cloud-amd64, rt-arm64 */
  flavour: string;
  /** ISO time the archive first offered it */
  firstSeen: string;
  /** ISO time it left the archive (the farm keeps building it) */
  goneSince?: string;
  /** ISO time its image was removed (serve --prune-gone-after); its results stay */
  prunedAt?: string;
}

export type LoadVerdict = NonNullable<ResultRow['load']>;

export interface CellLinks {
  /** the build's report: /api/v1/builds/<id>/report */
  report: string;
  /** the kernel's build log: /api/v1/builds/<id>/artifacts/logs/<kernel>.log */
  log: string;
  /** the load check's console, when one ran: /api/v1/builds/<id>/artifacts/logs/load/<module>/<kernel>.log */
  loadLog?: string;
}

/** The latest result of one (module, kernel). */
export interface DashboardCell {
  module: string;
  /** the module version this result built */
  version: string;
  kernel: string;
  verdict: ResultRow['verdict'];
  reason?: string;
  firstError?: string;
  load?: LoadVerdict;
  buildId: string;
  /** ISO time the result was recorded */
  at: string;
  links: CellLinks;
}

/** One kernel of a module's timeline; its release, arch and firstSeen are its DashboardKernel's. */
export interface TimelineEntry {
  kernel: string;
  /** absent: the kernel appeared but this module has no result for it yet */
  verdict?: ResultRow['verdict'];
  load?: LoadVerdict;
}

/** A module's kernels in the order the archive offered them (firstSeen), each with its latest verdict. */
export interface DashboardTimeline {
  module: string;
  entries: TimelineEntry[];
}

export interface ChangelogEntry {
  /** the headers package's Debian version: 6.1.158-1 */
  version: string;
  lines: string[];
}

/** An open regression of one module in one kernel series: the last kernel that worked and the first that did not. */
export interface DashboardRegression {
  module: string;
  /** 'build': compiled before, fails now; 'load': loaded before, fails to load now */
  kind: 'build' | 'load';
  /** Debian arch (amd64); line: the upstream kernel line (6.1) when a flavour carries two */
  series: { release: string; arch: string; flavour: string; line?: string };
  lastGood: string;
  firstBad: string;
  firstError?: string;
  /** "builds on 6.1.0-56-amd64, fails since 6.1.0-57-amd64" */
  sentence: string;
  /** ISO time firstBad was first seen failing */
  since?: string;
  /** Debian changelog entries between the two kernels' headers packages, newest first */
  changelog: ChangelogEntry[];
  /** why the changelog is missing or partial (no image, entries cut), said for people */
  changelogNote?: string;
  /** the first bad result's build, for its links */
  buildId?: string;
  links?: CellLinks;
}

export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

/** The build images a worker holds of one release and arch, and their kernels. */
export interface WorkerImages {
  /** debian-12 */
  name: string;
  /** x86_64, aarch64 */
  arch: string;
  /** uname -r of each, in version order (cut at MAX_WORKER_KERNELS; `more` says how many more) */
  kernels: string[];
  more?: number;
}

/**
 * A host that builds: a `kfarm worker` as its advert in Redis says (distributed mode), or
 * kfarm serve's own process (local mode). Every string comes from Redis, written by whoever can
 * write there: cut to a bound and escaped by the renderers.
 */
export interface DashboardWorker {
  /** its id: <host>:<pid> */
  worker: string;
  host: string;
  /** builds it runs now */
  running: number;
  /** builds it runs at once */
  concurrency: number;
  images: WorkerImages[];
  /** the boot lanes it takes for load checks (kvm, tcg) */
  verify: string[];
  /** ISO time of its last advert */
  lastSeen: string;
  /** live: advertising; gone: its advert expired or was withdrawn (kept in the list for a day) */
  state: 'live' | 'gone';
  /** ISO time the service saw it gone */
  goneSince?: string;
}

export interface BuildInFlight {
  id: string;
  /** the registered module, absent for a one-off source (kfarm build --farm) */
  module?: string;
  /** cells with a result */
  done: number;
  /** cells planned */
  total: number;
}

export interface DashboardLive {
  queue: QueueCounts;
  workers: DashboardWorker[];
  builds: BuildInFlight[];
}

export interface DashboardModel {
  schemaVersion: typeof DASHBOARD_SCHEMA_VERSION;
  /** ISO time the server made it */
  generatedAt: string;
  modules: DashboardModule[];
  kernels: DashboardKernel[];
  /** the latest result per (module, kernel); a pair with no result has no cell */
  cells: DashboardCell[];
  timelines: DashboardTimeline[];
  /** open ones only; the page shows them first */
  regressions: DashboardRegression[];
  live: DashboardLive;
}

/** The links of one result, each path segment percent-encoded (a kernel or module name cannot add a segment). */
export function buildLinks(buildId: string, module: string, kernel: string, withLoad: boolean): CellLinks {
  const e = encodeURIComponent;
  const base = `/api/v1/builds/${e(buildId)}`;
  return {
    report: `${base}/report`,
    log: `${base}/artifacts/logs/${e(`${kernel}.log`)}`,
    ...(withLoad ? { loadLog: `${base}/artifacts/logs/load/${e(module)}/${e(`${kernel}.log`)}` } : {}),
  };
}

/**
 * Pure: a link of the model as a path the page may point at, or undefined. Only `/api/v1/`
 * paths of unreserved or percent-encoded characters, no `.`/`..` segment (nor `%2e%2e`, which
 * URLs read as `..`): a model that a
 * compromised or buggy server filled cannot make a `javascript:` link or leave the API.
 * The page's script applies the same rule (SAFE_API_PATH's source is inlined there).
 */
export const SAFE_API_PATH = /^\/api\/v1(?:\/(?!(?:\.|%2e){1,2}(?:\/|$))[A-Za-z0-9._~%+@=,-]+)+$/i;

export function safeApiPath(link: string | undefined): string | undefined {
  return link !== undefined && SAFE_API_PATH.test(link) ? link : undefined;
}
