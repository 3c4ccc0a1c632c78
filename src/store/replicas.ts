/**
 * Controller replicas (migration 017): each running controller heartbeats a row, from the database's
 * clock, so that every replica can count the live ones and take its even share of the hosts. A
 * clean shutdown deletes its row; a killed replica's row expires like a lease.
 */
import type { Db } from './db';

export interface LiveReplica {
  holder: string;
  startedAt: Date;
}

/** Inserts or extends this replica's row; returns every live replica, oldest first, in the same round trip. */
export async function heartbeatReplica(db: Db, holder: string, ttlMs: number): Promise<LiveReplica[]> {
  const result = await db.query<{ holder: string; started_at: Date }>(
    `WITH beat AS (
       INSERT INTO sessionctl.controller_replicas AS r (holder, expires_at)
       VALUES ($1, now() + $2 * interval '1 millisecond')
       ON CONFLICT (holder) DO UPDATE SET heartbeat_at = now(), expires_at = EXCLUDED.expires_at
       RETURNING holder, started_at
     )
     SELECT holder, started_at FROM beat
      UNION
     SELECT holder, started_at FROM sessionctl.controller_replicas WHERE expires_at > now() AND holder <> $1
      ORDER BY started_at, holder`,
    [holder, ttlMs],
  );
  return result.rows.map((row) => ({ holder: row.holder, startedAt: row.started_at }));
}

/** A clean shutdown: the others count one replica fewer at their next heartbeat. */
export async function removeReplica(db: Db, holder: string): Promise<void> {
  await db.query('DELETE FROM sessionctl.controller_replicas WHERE holder = $1', [holder]);
}

/** Rows of replicas that stopped heartbeating long ago: kept only for a while, for `describe`. */
export async function pruneExpiredReplicas(db: Db, olderThanMs: number): Promise<number> {
  const result = await db.query(
    `DELETE FROM sessionctl.controller_replicas WHERE expires_at < now() - $1 * interval '1 millisecond'`,
    [olderThanMs],
  );
  return result.rowCount ?? 0;
}
