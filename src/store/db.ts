/**
 * The database seam: everything in the store takes a `Db`, so tests can hand in a pool,
 * a single client or a transaction.
 */
import { Pool, type PoolClient, type QueryResultRow } from 'pg';

export interface Db {
  query<R extends QueryResultRow = QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: R[]; rowCount: number | null }>;
}

export function createPool(connectionString: string, options: { max?: number; applicationName?: string } = {}): Pool {
  const pool = new Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'sessionctl',
    keepAlive: true,
    connectionTimeoutMillis: 5_000,
  });
  // An idle client that loses its connection emits 'error' on the pool; without a handler Node would crash.
  pool.on('error', () => undefined);
  return pool;
}

export async function withTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
