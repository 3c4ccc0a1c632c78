/**
 * The installation id (migration 008): one per sessionctl database, carried as a label by every
 * container and volume the controller creates, so that installations sharing a Docker daemon
 * tell their containers apart.
 */
import type { Db } from './db';

export async function readInstallationId(db: Db): Promise<string> {
  const { rows } = await db.query<{ id: string }>('SELECT id::text AS id FROM sessionctl.installation');
  if (!rows[0])
    throw new Error('sessionctl.installation is empty: run `sessionctl migrate` with the role that owns the schema');
  return rows[0].id;
}
