/**
 * The registry credentials table (migration 006): written by `sessionctl registry login|logout` as the
 * schema owner, read by the controller. `list` never returns a password.
 */
import type { RegistryCredentials } from '../registry/auth-header';
import type { Db } from './db';

export async function readRegistryCredentials(db: Db): Promise<Map<string, RegistryCredentials>> {
  const result = await db.query<{ registry: string; username: string; password: string }>(
    'SELECT registry, username, password FROM sessionctl.registry_credentials',
  );
  return new Map(result.rows.map((row) => [row.registry, { username: row.username, password: row.password }]));
}

export async function saveRegistryCredentials(
  db: Db,
  registry: string,
  credentials: RegistryCredentials,
): Promise<'created' | 'updated'> {
  const result = await db.query<{ created: boolean }>(
    `INSERT INTO sessionctl.registry_credentials (registry, username, password) VALUES ($1, $2, $3)
     ON CONFLICT (registry) DO UPDATE SET username = EXCLUDED.username, password = EXCLUDED.password, updated_at = now()
     RETURNING (xmax = 0) AS created`,
    [registry, credentials.username, credentials.password],
  );
  return result.rows[0].created ? 'created' : 'updated';
}

export async function deleteRegistryCredentials(db: Db, registry: string): Promise<boolean> {
  const result = await db.query('DELETE FROM sessionctl.registry_credentials WHERE registry = $1', [registry]);
  return result.rowCount === 1;
}

export async function listRegistryCredentials(
  db: Db,
): Promise<Array<{ registry: string; username: string; updatedAt: Date }>> {
  const result = await db.query<{ registry: string; username: string; updated_at: Date }>(
    'SELECT registry, username, updated_at FROM sessionctl.registry_credentials ORDER BY registry',
  );
  return result.rows.map((row) => ({ registry: row.registry, username: row.username, updatedAt: row.updated_at }));
}
