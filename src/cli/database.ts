/**
 * How CLI commands reach the database: DATABASE_URL when given, else the embedded default.
 * Migrations run before any command touches the tables.
 */
import type { Pool } from 'pg';
import type { Config } from '../config';
import { createPool } from '../store/db';
import { ensureEmbeddedPostgres } from '../store/embedded';
import { migrate } from '../store/migrate';

export async function databaseUrl(config: Pick<Config, 'databaseUrl' | 'stateDir' | 'embeddedPostgresPort'>): Promise<string> {
  return config.databaseUrl ?? ensureEmbeddedPostgres({ stateDir: config.stateDir, port: config.embeddedPostgresPort });
}

export async function openDatabase(config: Pick<Config, 'databaseUrl' | 'stateDir' | 'embeddedPostgresPort'>, applicationName: string): Promise<{ pool: Pool; url: string }> {
  const url = await databaseUrl(config);
  const pool = createPool(url, { applicationName });
  await migrate(pool);
  return { pool, url };
}
