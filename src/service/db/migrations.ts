/**
 * The farm database's schema, as numbered steps. PRAGMA user_version holds the number of steps
 * a file has had; opening applies the missing ones, each in its own transaction with its
 * number, so a step is in a file completely or not at all. A step, once released, is never
 * edited: a change is a new step at the end.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: the first schema
  `
  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    last_used_at TEXT
  ) STRICT;

  CREATE TABLE modules (
    name TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    settings TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  ) STRICT;

  -- module names no foreign key: a build's history outlives the module's registration
  CREATE TABLE builds (
    id TEXT PRIMARY KEY,
    module TEXT,
    source_sha256 TEXT NOT NULL,
    kernels TEXT NOT NULL,
    formats TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    trigger TEXT NOT NULL CHECK (trigger IN ('api', 'watch')),
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    exit_code INTEGER,
    summary TEXT,
    error TEXT
  ) STRICT;
  CREATE INDEX builds_by_module ON builds (module, created_at);
  CREATE INDEX builds_by_state ON builds (state) WHERE state IN ('queued', 'running');

  CREATE TABLE results (
    build_id TEXT NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    module TEXT NOT NULL,
    version TEXT NOT NULL,
    kernel TEXT NOT NULL,
    release TEXT NOT NULL,
    arch TEXT NOT NULL,
    flavour TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('built', 'failed', 'excluded')),
    reason TEXT,
    first_error TEXT,
    load TEXT CHECK (load IN ('loaded', 'load-failed', 'not-verified')),
    at TEXT NOT NULL,
    PRIMARY KEY (build_id, module, kernel)
  ) STRICT;
  CREATE INDEX results_by_module ON results (module, at);

  CREATE TABLE kernels (
    release TEXT NOT NULL,
    arch TEXT NOT NULL,
    kernel TEXT NOT NULL,
    flavour TEXT NOT NULL,
    version TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    gone_since TEXT,
    PRIMARY KEY (release, arch, kernel)
  ) STRICT;
  `,
  // 2: a build may check that its modules load (kfarm serve's verify=load)
  `ALTER TABLE builds ADD COLUMN verify TEXT CHECK (verify IN ('load'));`,
  // 3: a gone kernel's image removed by the watch (serve --prune-gone-after), and when
  `ALTER TABLE kernels ADD COLUMN pruned_at TEXT;`,
];
