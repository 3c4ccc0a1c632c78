/**
 * Each test file gets its own database on the real PostgreSQL that test/run.sh started,
 * migrated like production, and dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { Client, type Pool } from 'pg';
import { createPool } from '../../src/store/db';
import { migrate } from '../../src/store/migrate';

export function baseDatabaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: run the tests through `npm test`, which starts PostgreSQL');
  return url;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export interface TestDatabase {
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

export async function createTestDatabase(prefix: string): Promise<TestDatabase> {
  const name = `sctl_${prefix.replace(/[^a-z0-9]/g, '_')}_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: baseDatabaseUrl() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = withDatabase(baseDatabaseUrl(), name);
  const pool = createPool(url, { max: 5, applicationName: 'sessionctl-test' });
  await migrate(pool);
  return {
    url,
    pool,
    async drop() {
      await pool.end();
      const client = new Client({ connectionString: baseDatabaseUrl() });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}
