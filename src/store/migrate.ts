/**
 * Schema migrations: numbered plain `.sql` files, each applied in its own transaction and recorded
 * in `sessionctl.schema_migrations`. A session-level advisory lock serialises concurrent starters,
 * so several controllers (or a controller and `sessionctl migrate`) can start at once.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';

const MIGRATION_LOCK_KEY = 'sessionctl.migrations';
const FILE_PATTERN = /^(\d{3,})_([a-z0-9_]+)\.sql$/;

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
    .map(({ file, match }) => ({ version: Number(match[1]), name: match[2], sql: readFileSync(path.join(directory, file), 'utf8') }))
    .sort((a, b) => a.version - b.version);
  migrations.forEach((migration, index) => {
    if (index > 0 && migrations[index - 1].version === migration.version) {
      throw new Error(`two migrations share version ${migration.version} in ${directory}; renumber one of them`);
    }
  });
  return migrations;
}

/** Applies pending migrations and returns the versions it applied. */
export async function migrate(pool: Pool, migrations = loadMigrations()): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [MIGRATION_LOCK_KEY]);
    await client.query('CREATE SCHEMA IF NOT EXISTS sessionctl');
    await client.query(`CREATE TABLE IF NOT EXISTS sessionctl.schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = await client.query<{ version: number }>('SELECT version FROM sessionctl.schema_migrations');
    const doneVersions = new Set(done.rows.map((row) => row.version));
    for (const migration of migrations) {
      if (doneVersions.has(migration.version)) continue;
      try {
        await client.query('BEGIN');
        await client.query(migration.sql);
        await client.query('INSERT INTO sessionctl.schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new Error(`migration ${migration.version}_${migration.name}.sql failed: ${(error as Error).message}`, { cause: error });
      }
      applied.push(migration.version);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    client.release();
  }
  return applied;
}
