/**
 * What the gateway reads and writes: one query that loads routes (a session's spec, status and its
 * token's hash, never the plaintext), and the batched activity write idle culling reads.
 */
import type { SessionStatus } from '../../crds/status';
import type { Db } from './db';

export const TOKENS_CHANNEL = 'sessionctl_tokens';

export interface RouteRow {
  name: string;
  uid: string;
  /** Unvalidated: other services write it directly. */
  spec: unknown;
  status: Partial<SessionStatus>;
  deleting: boolean;
  tokenSha256: string | null;
  tokenExpiresAt: Date | null;
}

/** Every session, or only `names`: one statement whatever the count. */
export async function listRouteRows(db: Db, names?: string[]): Promise<RouteRow[]> {
  const result = await db.query<{
    name: string;
    uid: string;
    spec: unknown;
    status: Partial<SessionStatus>;
    deleting: boolean;
    token_sha256: string | null;
    expires_at: Date | null;
  }>(
    `SELECT s.name, s.uid, s.spec, s.status, s.deletion_requested_at IS NOT NULL AS deleting, t.token_sha256, t.expires_at
       FROM sessionctl.sessions s LEFT JOIN sessionctl.session_tokens t ON t.session_name = s.name AND t.session_uid = s.uid
      WHERE $1::text[] IS NULL OR s.name = ANY($1::text[])`,
    [names ?? null],
  );
  return result.rows.map((row) => ({
    name: row.name,
    uid: row.uid,
    spec: row.spec,
    status: row.status ?? {},
    deleting: row.deleting,
    tokenSha256: row.token_sha256,
    tokenExpiresAt: row.expires_at,
  }));
}

/**
 * Records activity for many sessions in one statement. Never moves last_activity_at backwards (two
 * gateways may flush out of order). A session idled out is woken by the notify trigger of migration 005.
 */
export async function recordActivity(db: Db, activity: Array<{ name: string; at: Date }>): Promise<number> {
  if (activity.length === 0) return 0;
  const result = await db.query(
    `UPDATE sessionctl.sessions s SET last_activity_at = a.at
       FROM unnest($1::text[], $2::timestamptz[]) AS a(name, at)
      WHERE s.name = a.name AND (s.last_activity_at IS NULL OR s.last_activity_at < a.at)`,
    [activity.map((entry) => entry.name), activity.map((entry) => entry.at.toISOString())],
  );
  return result.rowCount ?? 0;
}
