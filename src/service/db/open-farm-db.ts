import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, linkSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { KfarmError } from '../../errors/kfarm-error.js';
import type { Logger } from '../../logging/logger.js';
import type { FarmDb } from '../farm-db.js';
import { buildsTable } from './builds-table.js';
import { kernelsTable } from './kernels-table.js';
import { MIGRATIONS } from './migrations.js';
import { modulesTable } from './modules-table.js';
import { resultsTable } from './results-table.js';
import { corruptState, fileFailure, guardFor, sqliteFailure } from './sqlite-failure.js';
import { tokensTable } from './tokens-table.js';

/** Where the service's database lives: <state>/service/farm.db. */
export function farmDbPath(stateDir: string): string {
  return path.join(stateDir, 'service', 'farm.db');
}

/** PRAGMA application_id of a kfarm database ("kfrm"): tells it apart from another program's SQLite file. */
export const KFARM_APPLICATION_ID = 0x6b66726d;

/** How long a statement waits for another process's write lock (kfarm serve and kfarm tokens share the file). */
const BUSY_TIMEOUT_MS = 5000;

/**
 * Opens (or, where no file is, creates) the farm database. A file that is there is checked
 * (PRAGMA quick_check) and never replaced: a damaged one, or one that is not a kfarm database,
 * is a STATE_CORRUPT error, one from a newer kfarm is STATE_TOO_NEW. A missing one is made
 * complete beside it and linked into place, so an existing file that is empty was truncated,
 * not left half-made by an interrupted first start.
 */
export function openFarmDb(file: string, logger?: Logger): FarmDb {
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  } catch (err) {
    throw fileFailure(err, file, `creating ${path.dirname(file)}`);
  }
  if (!existsSync(file)) createFresh(file, logger);
  else if (statSync(file).size === 0) throw corruptState(file, 'an empty file');
  writable(file);

  const db = connect(file);
  try {
    checkIntegrity(db, file);
    prepare(db);
    migrate(db, file, logger);
  } catch (err) {
    db.close();
    throw sqliteFailure(err, file, 'opening it');
  }
  const guard = guardFor(file);
  return {
    file,
    close: () => db.close(),
    tokens: tokensTable(db, guard, logger),
    modules: modulesTable(db, guard),
    builds: buildsTable(db, guard),
    results: resultsTable(db, guard),
    kernels: kernelsTable(db, guard),
  };
}

/**
 * SQLite opens a file it cannot write read-only without a word, and only the first write would
 * fail: a service that could not record a build is refused at the start instead.
 */
function writable(file: string): void {
  for (const target of [path.dirname(file), file])
    try {
      accessSync(target, constants.W_OK);
    } catch (err) {
      throw fileFailure(err, file, `checking that ${target} is writable`);
    }
}

function connect(file: string): Database.Database {
  try {
    return new Database(file, { fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    throw sqliteFailure(err, file, 'opening it');
  }
}

function prepare(db: Database.Database): void {
  // WAL: the API's readers never wait for the build's writes; FULL: a committed result survives a power cut
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
}

function checkIntegrity(db: Database.Database, file: string): void {
  let problems: string[];
  try {
    problems = (db.pragma('quick_check') as { quick_check: string }[]).map((r) => r.quick_check.replace(/\s*\n\s*/g, ' '));
  } catch (err) {
    throw sqliteFailure(err, file, 'checking it');
  }
  if (problems.length !== 1 || problems[0] !== 'ok') throw corruptState(file, `quick_check: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? '; ...' : ''}`);
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number }).n;
  if (appId !== KFARM_APPLICATION_ID && (appId !== 0 || version !== 0 || tables !== 0)) throw corruptState(file, `a SQLite database of another program (application_id ${appId})`);
}

/** Brings the schema to MIGRATIONS.length, one numbered step per transaction. */
function migrate(db: Database.Database, file: string, logger: Logger | undefined): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length)
    throw new KfarmError('STATE_TOO_NEW', `the farm's state ${file} has schema version ${version}, newer than this kfarm knows (${MIGRATIONS.length}): a newer kfarm wrote it`, {
      context: { file, version, known: MIGRATIONS.length },
      hint: 'Upgrade kfarm to the version that wrote it (or newer). This one leaves the file as it is.',
    });
  for (let step = version + 1; step <= MIGRATIONS.length; step += 1) {
    db.transaction(() => {
      db.exec(MIGRATIONS[step - 1] as string);
      // PRAGMAs take no parameters: both values are this module's own integers
      db.pragma(`user_version = ${step}`);
      db.pragma(`application_id = ${KFARM_APPLICATION_ID}`);
    })();
    logger?.info({ file, version: step }, 'farm database schema migrated');
  }
}

/** Makes a new database beside `file` and links it into place only once it is complete. */
function createFresh(file: string, logger: Logger | undefined): void {
  const temp = `${file}.new-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    // made first so SQLite's own files (-wal, -shm) take its owner-only mode: it holds the token hashes
    writeFileSync(temp, '', { mode: 0o600, flag: 'wx' });
    const db = connect(temp);
    try {
      prepare(db);
      migrate(db, temp, logger);
    } finally {
      db.close();
    }
    try {
      linkSync(temp, file);
    } catch (err) {
      // another process made it first: theirs is as good as ours
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  } catch (err) {
    const known = sqliteFailure(err, file, 'creating it');
    throw known instanceof KfarmError ? known : (err as NodeJS.ErrnoException).code ? fileFailure(err, file, 'creating it') : err;
  } finally {
    for (const f of [temp, `${temp}-wal`, `${temp}-shm`]) rmSync(f, { force: true });
  }
}
