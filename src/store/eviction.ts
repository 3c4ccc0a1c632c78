/**
 * Moving sessions off a host (`sessionctl drain`): the admin's side of migration 017. The admin asks
 * for an eviction (`evict_requested_at`, `evict_reason`); the leaseholder of the session's host
 * removes its container, then takes the session off the host; the placer places it elsewhere. This
 * module only asks and watches: it never writes `placed_host`.
 */
import type { Db } from './db';

/** A session as drain sees it: identity, and whether it keeps data on its host. */
export interface HostedSession {
  name: string;
  uid: string;
  /** spec.volumes is non-empty (named volumes or hostPath): moving it leaves its data behind. */
  keepsData: boolean;
  /** When an eviction was asked for and not yet done, else null. */
  evictRequestedAt: Date | null;
}

/**
 * Where an evicted session is now: still on the host, placed on another, off every host and
 * waiting for room (Scheduled=False), off the host but not placed yet, or gone (deleted, or its
 * row re-created under the same name).
 */
export type Whereabouts =
  | { name: string; where: 'here' }
  | { name: string; where: 'moved'; host: string }
  | { name: string; where: 'waiting'; reason: string; message: string }
  | { name: string; where: 'unplaced' }
  | { name: string; where: 'gone' };

export type SessionRef = Pick<HostedSession, 'name' | 'uid'>;

/** The sessions placed on the host and not being deleted, in name order. */
export async function sessionsOnHost(db: Db, host: string): Promise<HostedSession[]> {
  const result = await db.query<{ name: string; uid: string; keeps_data: boolean; evict_requested_at: Date | null }>(
    `SELECT name, uid,
            CASE WHEN jsonb_typeof(spec -> 'volumes') = 'array' THEN jsonb_array_length(spec -> 'volumes') > 0
                 ELSE false END AS keeps_data,
            evict_requested_at
       FROM sessionctl.sessions
      WHERE placed_host = $1 AND deletion_requested_at IS NULL
      ORDER BY name`,
    [host],
  );
  return result.rows.map((row) => ({
    name: row.name,
    uid: row.uid,
    keepsData: row.keeps_data,
    evictRequestedAt: row.evict_requested_at,
  }));
}

/**
 * Asks for the eviction of these sessions from the host. Only rows still on that host, with the
 * same uid (not re-created meanwhile) and not being deleted are marked; returns their names.
 */
export async function requestEvictions(
  db: Db,
  host: string,
  sessions: SessionRef[],
  reason = 'Drain',
): Promise<string[]> {
  if (sessions.length === 0) return [];
  const result = await db.query<{ name: string }>(
    `UPDATE sessionctl.sessions s SET evict_requested_at = now(), evict_reason = $4
       FROM unnest($2::text[], $3::uuid[]) AS t(name, uid)
      WHERE s.name = t.name AND s.uid = t.uid AND s.placed_host = $1 AND s.deletion_requested_at IS NULL
      RETURNING s.name`,
    [host, sessions.map((session) => session.name), sessions.map((session) => session.uid), reason],
  );
  return result.rows.map((row) => row.name).sort();
}

/** Where each of these sessions (evicted from `host`) is now, in the order given. */
export async function whereaboutsOf(db: Db, host: string, sessions: SessionRef[]): Promise<Whereabouts[]> {
  if (sessions.length === 0) return [];
  const result = await db.query<{
    name: string;
    placed_host: string | null;
    present: boolean;
    scheduled: { status?: string; reason?: string; message?: string } | null;
  }>(
    `SELECT t.name, s.placed_host, s.name IS NOT NULL AND s.deletion_requested_at IS NULL AS present,
            jsonb_path_query_first(s.status, '$.conditions[*] ? (@.type == "Scheduled")') AS scheduled
       FROM unnest($1::text[], $2::uuid[]) WITH ORDINALITY AS t(name, uid, position)
       LEFT JOIN sessionctl.sessions s ON s.name = t.name AND s.uid = t.uid
      ORDER BY t.position`,
    [sessions.map((session) => session.name), sessions.map((session) => session.uid)],
  );
  return result.rows.map((row): Whereabouts => {
    if (!row.present) return { name: row.name, where: 'gone' };
    if (row.placed_host === host) return { name: row.name, where: 'here' };
    if (row.placed_host !== null) return { name: row.name, where: 'moved', host: row.placed_host };
    if (row.scheduled?.status === 'False')
      return {
        name: row.name,
        where: 'waiting',
        reason: row.scheduled.reason ?? 'Unschedulable',
        message: row.scheduled.message ?? '',
      };
    return { name: row.name, where: 'unplaced' };
  });
}
