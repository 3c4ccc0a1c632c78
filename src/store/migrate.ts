/**
 * Schema migrations: numbered plain `.sql` files, each applied in its own transaction and recorded
 * in `sessionctl.schema_migrations`. A session-level advisory lock serialises concurrent starters,
 * so several controllers (or a controller and `sessionctl migrate`) can start at once.
 *
 * When nothing is pending, migrate() only reads `schema_migrations`, so a controller or CLI connected
 * as a login user holding just the writer or controller role (migration 003) starts fine; applying
 * migrations needs the schema owner or a superuser.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';

const MIGRATION_LOCK_KEY = 'sessionctl.migrations';
const FILE_PATTERN = /^(\d{3,})_([a-z0-9_]+)\.sql$/;

/** A role name migration 003 accepts: a plain lowercase SQL identifier, not in the reserved pg_ namespace. */
export const ROLE_NAME_PATTERN = /^(?!pg_)[a-z_][a-z0-9_]{0,62}$/;

export interface DatabaseRoles {
  /** Other services: read, insert/upsert and delete sessions, update spec, labels, deletion and activity only. */
  writer: string;
  /** The controller: every column of sessions, and events. */
  controller: string;
  /** Sees and changes every writer's sessions and may reassign their owner (migration 009). Defaults to sessionctl_admin. */
  admin?: string;
}

export const DEFAULT_ROLES: Readonly<Required<DatabaseRoles>> = Object.freeze({
  writer: 'sessionctl_writer',
  controller: 'sessionctl_controller',
  admin: 'sessionctl_admin',
});

/**
 * What every migration runs under: unqualified names resolve to sessionctl, then pg_catalog, and
 * never to an object someone planted in public or in a temporary schema.
 */
export const MIGRATION_SEARCH_PATH = 'sessionctl, pg_catalog, pg_temp';

export interface MigrateOptions {
  /** The group roles migration 003 creates (if missing) and grants to. Defaults to DEFAULT_ROLES. */
  roles?: DatabaseRoles;
  /** Defaults to the .sql files in src/store/migrations. */
  migrations?: Migration[];
}

function checkRoles(roles: DatabaseRoles): void {
  for (const [which, name] of Object.entries(roles)) {
    if (!ROLE_NAME_PATTERN.test(name)) {
      throw new Error(
        `the ${which} role name ${JSON.stringify(name)} is not a lowercase SQL identifier of at most 63 characters (letters, digits, "_", not starting with "pg_")`,
      );
    }
  }
  if (roles.writer === roles.controller)
    throw new Error(`the writer and controller roles must differ, both are ${roles.writer}`);
  if (roles.admin !== undefined && (roles.admin === roles.writer || roles.admin === roles.controller)) {
    throw new Error(`the admin role must differ from the writer and controller roles, it is ${roles.admin}`);
  }
}

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Where package.json lives, whether this runs from src/ (tests) or dist/src/ (the CLI). */
export function packageRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the sessionctl package root above ${__dirname}`);
    dir = parent;
  }
  return dir;
}

/** The .sql files are not compiled: read them from the source tree. */
export function migrationsDirectory(): string {
  return path.join(packageRoot(), 'src', 'store', 'migrations');
}

export function loadMigrations(directory = migrationsDirectory()): Migration[] {
  const migrations = readdirSync(directory)
    .map((file) => ({ file, match: FILE_PATTERN.exec(file) }))
    .filter((entry): entry is { file: string; match: RegExpExecArray } => entry.match !== null)
    .map(({ file, match }) => ({
      version: Number(match[1]),
      name: match[2],
      sql: readFileSync(path.join(directory, file), 'utf8'),
    }))
    .sort((a, b) => a.version - b.version);
  migrations.forEach((migration, index) => {
    if (index > 0 && migrations[index - 1].version === migration.version) {
      throw new Error(`two migrations share version ${migration.version} in ${directory}; renumber one of them`);
    }
  });
  return migrations;
}

/**
 * A database migrated by a newer sessionctl has tables and rules this code does not know: running
 * against it could undo or misread them, so the controller stops and says which versions differ.
 */
export function refuseNewerSchema(applied: Set<number>, known: Migration[]): void {
  const newest = Math.max(0, ...known.map((migration) => migration.version));
  const unknown = [...applied]
    .filter((version) => !known.some((migration) => migration.version === version))
    .sort((a, b) => a - b);
  if (unknown.length === 0) return;
  throw new Error(
    `the database schema is at version ${Math.max(...applied)}, newer than this sessionctl knows (${newest}; unknown migrations: ${unknown.join(', ')}): ` +
      'run the sessionctl version that migrated this database, or a newer one',
  );
}

/** Applies pending migrations and returns the versions it applied. */
export async function migrate(pool: Pool, options: MigrateOptions = {}): Promise<number[]> {
  const { migrations = loadMigrations(), roles = DEFAULT_ROLES } = options;
  checkRoles(roles);
  const client = await pool.connect();
  const applied: number[] = [];
  let rolesSet = false;
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [MIGRATION_LOCK_KEY]);
    // Creating the schema and the bookkeeping table needs DDL privileges even with IF NOT EXISTS,
    // so only try when the table is missing.
    const present = await client.query<{ present: boolean }>(
      `SELECT to_regclass('sessionctl.schema_migrations') IS NOT NULL AS present`,
    );
    if (!present.rows[0].present) {
      await client.query('CREATE SCHEMA IF NOT EXISTS sessionctl');
      await client.query(`CREATE TABLE IF NOT EXISTS sessionctl.schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    }
    const done = await client.query<{ version: number }>('SELECT version FROM sessionctl.schema_migrations');
    const doneVersions = new Set(done.rows.map((row) => row.version));
    refuseNewerSchema(doneVersions, migrations);
    const pending = migrations.filter((migration) => !doneVersions.has(migration.version));
    if (pending.length > 0) {
      // Read by 003_roles.sql through current_setting(); session-level, reset below.
      await client.query(
        `SELECT set_config('sessionctl.writer_role', $1, false), set_config('sessionctl.controller_role', $2, false), set_config('sessionctl.admin_role', $3, false)`,
        [roles.writer, roles.controller, roles.admin ?? DEFAULT_ROLES.admin],
      );
      rolesSet = true;
    }
    for (const migration of pending) {
      try {
        await client.query('BEGIN');
        await client.query(`SET LOCAL search_path = ${MIGRATION_SEARCH_PATH}`);
        await client.query(migration.sql);
        await client.query('INSERT INTO sessionctl.schema_migrations (version, name) VALUES ($1, $2)', [
          migration.version,
          migration.name,
        ]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new Error(`migration ${migration.version}_${migration.name}.sql failed: ${(error as Error).message}`, {
          cause: error,
        });
      }
      applied.push(migration.version);
    }
  } finally {
    if (rolesSet)
      await client
        .query('RESET sessionctl.writer_role; RESET sessionctl.controller_role; RESET sessionctl.admin_role')
        .catch(() => undefined);
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    client.release();
  }
  return applied;
}
