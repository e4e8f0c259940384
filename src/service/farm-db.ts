/**
 * The service's state (`kfarm serve`): one SQLite file under the state dir holding registered
 * modules, builds, every (module, kernel) result over time, the kernels the archive offered and
 * the API's tokens. Results' artifacts stay in the result store and the builds' out dirs; this
 * holds what the API, the watch and the regression view query. Implemented by db/open-farm-db.ts.
 */

export const SCOPES = ['read', 'submit', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface TokenRow {
  id: string;
  name: string;
  scopes: Scope[];
  createdAt: string;
  lastUsedAt?: string;
}

/** How the farm treats a registered module when it builds it on its own (the watch) or on request. */
export interface ModuleSettings {
  /** package formats besides the DKMS tarballs (kfarm build --format), e.g. ['bmdeb', 'kmod-rpm'] */
  formats: string[];
  /** the kernel selector the watch builds new kernels of (default: every kernel the farm holds) */
  kernels?: string;
  /** `load`: its builds boot each built kernel and load the modules (kfarm build --verify load) */
  verify?: 'load';
  /** true: its builds are signed with the farm's key (kfarm serve --sign-key), as kfarm build --sign-key signs */
  sign?: true;
}

export interface ModuleRow {
  /** PACKAGE_NAME of its dkms.conf */
  name: string;
  /** PACKAGE_VERSION of its dkms.conf */
  version: string;
  /** sha256 of the uploaded source archive, stored under <state>/service/sources/<sha256>.tar.gz */
  sourceSha256: string;
  settings: ModuleSettings;
  createdAt: string;
  updatedAt: string;
}

export type BuildState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
export type BuildTrigger = 'api' | 'watch';

export interface BuildSummary {
  built: number;
  failed: number;
  excluded: number;
}

export interface BuildRow {
  /** b-<time>-<random>: sortable by creation */
  id: string;
  /** the registered module it builds, or undefined for a one-off source (kfarm build --farm) */
  module?: string;
  sourceSha256: string;
  /** the kernel selector as submitted */
  kernels: string;
  formats: string[];
  state: BuildState;
  trigger: BuildTrigger;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** the exit code a local `kfarm build` would have ended with (0, 1 kernels failed, 2 refused, ...) */
  exitCode?: number;
  summary?: BuildSummary;
  /** why the build as a whole failed (not a kernel's compile error: those are results) */
  error?: string;
  /** `load`: each built kernel is booted and the modules loaded (kfarm build --verify load) */
  verify?: 'load';
}

/** One (module, kernel) verdict of one build: the history the regression view reads. */
export interface ResultRow {
  buildId: string;
  module: string;
  version: string;
  kernel: string;
  release: string;
  /** kfarm's arch name as reports give it (x86_64, aarch64) */
  arch: string;
  /** the kernel's flavour (amd64, cloud-amd64, rt-arm64...) */
  flavour: string;
  verdict: 'built' | 'failed' | 'excluded';
  reason?: string;
  firstError?: string;
  /** the load check's verdict when one ran */
  load?: 'loaded' | 'load-failed' | 'not-verified';
  /** ISO time the result was recorded */
  at: string;
}

export interface KernelSeenRow {
  kernel: string;
  release: string;
  /** Debian arch (amd64, arm64) */
  arch: string;
  flavour: string;
  /** the headers package's Debian version */
  version: string;
  firstSeen: string;
  lastSeen: string;
  /** set when a later look at the archive no longer listed it (the farm keeps building it) */
  goneSince?: string;
  /** set when the watch removed its image, gone longer than serve's --prune-gone-after (its results stay) */
  prunedAt?: string;
}

export interface FarmDb {
  /** the file it lives in */
  readonly file: string;
  close(): void;
  tokens: {
    /** the token text is returned here only; the table keeps its sha256 */
    create(name: string, scopes: readonly Scope[]): { token: string; row: TokenRow };
    /** the token's row when the text matches a stored hash (looked up by the hash: safe against timing, see db/tokens-table.ts), else undefined; records last use (at most once a minute) */
    verify(token: string): TokenRow | undefined;
    list(): TokenRow[];
    revoke(id: string): boolean;
  };
  modules: {
    /** registers a module or updates its source and settings (keyed by name) */
    upsert(row: Omit<ModuleRow, 'createdAt' | 'updatedAt'>): ModuleRow;
    get(name: string): ModuleRow | undefined;
    list(): ModuleRow[];
    remove(name: string): boolean;
  };
  builds: {
    create(row: Omit<BuildRow, 'id' | 'state' | 'createdAt'>): BuildRow;
    get(id: string): BuildRow | undefined;
    /** newest first */
    list(filter?: { module?: string; limit?: number }): BuildRow[];
    update(id: string, patch: Partial<Pick<BuildRow, 'state' | 'startedAt' | 'finishedAt' | 'exitCode' | 'summary' | 'error'>>): BuildRow;
    /** builds a restart must resume: queued or running */
    unfinished(): BuildRow[];
  };
  results: {
    /** idempotent per (buildId, module, kernel): a resumed build records a cell once */
    record(rows: readonly ResultRow[]): void;
    forBuild(buildId: string): ResultRow[];
    /** every result of a module, oldest first (the regression view's input) */
    history(module: string): ResultRow[];
  };
  kernels: {
    /**
     * records what a look at the archive offered; returns the kernels never seen before and those newly gone.
     * Gone is judged per (release, arch) the look offered any kernel of: a look that skipped a release or
     * arch, or could not read its index, marks none of its kernels gone. One offered again is no longer gone.
     */
    observe(offered: ReadonlyArray<Omit<KernelSeenRow, 'firstSeen' | 'lastSeen' | 'goneSince' | 'prunedAt'>>, at: string): { added: KernelSeenRow[]; gone: KernelSeenRow[] };
    list(): KernelSeenRow[];
    /** records that these gone kernels were pruned (their images removed); one offered again later is no longer pruned */
    markPruned(kernels: ReadonlyArray<Pick<KernelSeenRow, 'release' | 'arch' | 'kernel'>>, at: string): void;
  };
}
